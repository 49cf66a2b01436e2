"""Counted words as pages, messages and SMS say them: "1 attempt", "4 attempts", "2 tries"."""


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`count` and its noun, singular for exactly one (`nouns` when the plural is not noun+s)."""
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"

"""Conditions as bits of one integer, in SQL: what the backtest groups a month of decisions
by (`shop.risk.sql_rules`, `shop.risk.replay`)."""

from sqlalchemy import ColumnElement, Integer, cast, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import False_
from sqlalchemy.sql.functions import FunctionElement


class as_integer(FunctionElement):
    """A condition as 0 or 1: CAST on PostgreSQL; on SQLite a comparison already is 0 or 1,
    and leaving the CAST out saves a tenth of the backtest's scan of a month of orders."""

    type = Integer()
    inherit_cache = True


@compiles(as_integer)
def _cast_as_integer(element, compiler, **kw):
    return compiler.process(cast(element.clauses.clauses[0], Integer), **kw)


@compiles(as_integer, "sqlite")
def _already_an_integer(element, compiler, **kw):
    return f"({compiler.process(element.clauses.clauses[0], **kw)})"


def sum_of_bits(conditions: list[ColumnElement[bool]]) -> ColumnElement[int]:
    """An integer with bit i set when conditions[i] holds."""
    # A condition that is a constant (a rule switched off) adds nothing: left out.
    terms = [
        as_integer(condition) * (1 << index)
        for index, condition in enumerate(conditions)
        if not isinstance(condition, False_)
    ] or [literal(0)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total

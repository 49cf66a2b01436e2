"""The scale table as Markdown, from the JSON `make bench-scale --output` writes.

`python -m bench.scale.table docs/scale/before.json [docs/scale/after.json]`: one row per
figure, one column per size and database (with a second file: "before → after").
`python -m bench.scale.table --goal docs/scale/after.json`: each figure at S and L against
the goal of the scale work (below), with the time the statements took beside it.
"""

import json
import sys
from pathlib import Path
from typing import Any

SIZES = ("S", "M", "L")
# The goal at L: within 1.5x of S and under 100 ms, but for these.
GROWTH, CEILING_MS = 1.5, 100.0
CEILINGS_MS = {
    "backtest": 2000.0,
    "worker_claim": 5.0,
    "worker_expire_pending": 5.0,
    # The most the web waits for a pruner: S has nothing old enough to prune.
    "sms_prune_batch": 100.0,
    "audit_prune_batch": 100.0,
}
THROUGHPUT_FLOOR = 0.7  # the catalog's, to bare Flask, at every size
UNJUDGED = {"worker_idle_cpu"}  # shown; the goal names no figure for it


def cell(figure: dict[str, Any] | None) -> str:
    if figure is None:
        return "–"
    if "ratio" in figure:
        return f"{figure['ratio']:.2f}×"
    if "cpu_percent_of_a_core" in figure:
        text = f"{figure['cpu_percent_of_a_core']:g} %"
        if "database_cpu_percent_of_a_core" in figure:
            text += f" + db {figure['database_cpu_percent_of_a_core']:g} %"
        return text
    ms = figure["ms"]
    text = f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"
    if figure.get("status") not in (None, 200, 302):
        text += f" ({figure['status']})"
    return text


def table(results: list[dict[str, Any]]) -> str:
    first = results[0]
    databases = list(first)
    header = ["figure"] + [f"{size} {database}" for database in databases for size in SIZES]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, by_size in first[databases[0]]["figures"].items():
        what = next(iter(by_size.values())).get("what", name)
        row = [what]
        for database in databases:
            for size in SIZES:
                cells = [
                    cell(result.get(database, {}).get("figures", {}).get(name, {}).get(size))
                    for result in results
                ]
                row.append(" → ".join(cells))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def verdict(name: str, small: dict[str, Any], large: dict[str, Any]) -> str:
    if name in UNJUDGED:
        return ""
    if "ratio" in large:
        worst = min(small["ratio"], large["ratio"])
        return "yes" if worst >= THROUGHPUT_FLOOR else f"no (< {THROUGHPUT_FLOOR}×)"
    ceiling = CEILINGS_MS.get(name, CEILING_MS)
    misses = []
    if large["ms"] >= ceiling:
        misses.append(f"≥ {ceiling:g} ms")
    if name not in CEILINGS_MS and large["ms"] > GROWTH * small["ms"]:
        misses.append(f"{large['ms'] / small['ms']:.1f}× S")
    return "yes" if not misses else "no (" + ", ".join(misses) + ")"


def goal(result: dict[str, Any]) -> str:
    lines = [
        "| figure | database | S | L | L ÷ S | statements S → L | goal met |",
        "|---|---|---|---|---|---|---|",
    ]
    for database, data in result.items():
        for name, by_size in data["figures"].items():
            small, large = by_size.get("S"), by_size.get("L")
            if small is None or large is None:
                continue
            growth = f"{large['ms'] / small['ms']:.2f}" if "ms" in large and small["ms"] else ""
            statements = ""
            if "statements_ms" in large:
                statements = f"{small['statements_ms']:.1f} → {large['statements_ms']:.1f} ms"
            what = large.get("what", name)
            row = [what, database, cell(small), cell(large), growth, statements]
            lines.append("| " + " | ".join([*row, verdict(name, small, large)]) + " |")
    return "\n".join(lines)


def main() -> int:
    arguments = sys.argv[1:]
    if arguments[:1] == ["--goal"] and len(arguments) == 2:
        print(goal(json.loads(Path(arguments[1]).read_text())))
        return 0
    results = [json.loads(Path(path).read_text()) for path in arguments]
    if not results:
        print(__doc__)
        return 2
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

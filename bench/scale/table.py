"""The scale table as Markdown, from the JSON `make bench-scale --output` writes.

`python -m bench.scale.table docs/scale/before.json [docs/scale/after.json]`: one row per
figure, one column per size and database (with a second file: "before → after").
"""

import json
import sys
from pathlib import Path
from typing import Any

SIZES = ("S", "M", "L")


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


def main() -> int:
    results = [json.loads(Path(path).read_text()) for path in sys.argv[1:]]
    if not results:
        print(__doc__)
        return 2
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

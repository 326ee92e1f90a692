"""Put a results JSON into ``docs/benchmarks.md``: ``python -m benchmarks.render RESULTS.json``.

The figures in the document are only ever written by this script, from the runner's own JSON, between
marker comments: ``results`` for the main benchmarks, ``gpu`` for a ``--real-size`` run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.report import Row, Target, grouped_by_table
from benchmarks.stats import Summary

DEFAULT_DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BLOCKS = {
    "results": ("<!-- results:start -->", "<!-- results:end -->"),
    "gpu": ("<!-- gpu:start -->", "<!-- gpu:end -->"),
}


def row_from_dict(data: dict[str, Any]) -> Row:
    """Rebuild a :class:`Row` from its JSON form."""

    def summary(value: dict[str, Any] | None) -> Summary | None:
        return Summary(**value) if value else None

    target = data.get("target")
    return Row(
        benchmark=data["benchmark"],
        case=data["case"],
        status=data["status"],
        value=data.get("value"),
        unit=data.get("unit", ""),
        target=Target(target["op"], target["limit"]) if target else None,
        spread=summary(data.get("spread")),
        app=summary(data.get("app")),
        baseline=summary(data.get("baseline")),
        sample_unit=data.get("sample_unit", "s"),
        note=data.get("note", ""),
        samples=data.get("samples", {}),
        extra=data.get("extra", {}),
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line(document: dict[str, Any]) -> str:
    machine = document["machine"]
    ram_gb = machine["ram_bytes"] / 2**30
    load = machine.get("load_average_at_start"), machine.get("load_average_at_end")
    load_text = ""
    if all(load):
        load_text = f"; 1-minute load average {load[0][0]} at the start, {load[1][0]} at the end"
    threads = document["options"].get("threads")
    threads_text = f"; torch limited to {threads} thread(s)" if threads else ""
    return (
        f"Measured {document['date']} on {machine['cpu']} ({machine['logical_cores']} logical cores, "
        f"{ram_gb:.0f} GiB RAM), {machine['os']}; Python {machine['python']}, torch {machine['torch']}, "
        f"diffusers {machine['diffusers']}, transformers {machine['transformers']}; "
        f"{document['options']['repeat']} repeats after {document['options']['warmup']} warm-up"
        f"{threads_text}{load_text}."
    )


def render(document: dict[str, Any]) -> str:
    """The markdown block for one results document."""
    rows = [row_from_dict(r) for r in document["results"]]
    command = "python -m benchmarks " + " ".join(document["options"].get("argv", []))
    parts = [machine_line(document), "", f"Command: `{command.strip()}`", ""]
    for layout, shown in grouped_by_table(rows):
        # A blank line after each table: two tables on adjacent lines would read as one.
        parts += [markdown_table(layout.headers, [layout.cells(row) for row in shown]), ""]
    notes = [f"- **{row.benchmark} · {row.case}**: {row.note}" for row in rows if row.note]
    if notes:
        parts += ["Notes from the run:", "", *notes]
    return "\n".join(parts).rstrip("\n")


def replace_block(text: str, block: str, body: str) -> str:
    """``text`` with everything between the block's two markers replaced by ``body``."""
    start, end = BLOCKS[block]
    head, found_start, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if not found_start or not found_end:
        raise ValueError(f"the document has no {start} … {end} markers")
    return f"{head}{start}\n{body}\n{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.render", description=__doc__)
    parser.add_argument("results", type=Path, help="A JSON file written by `python -m benchmarks --json`.")
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC, help="The markdown file to update.")
    args = parser.parse_args(argv)
    document = json.loads(args.results.read_text(encoding="utf-8"))
    block = "gpu" if document["options"].get("real_size") else "results"
    if block == "gpu" and document["options"].get("reduced"):
        print("error: a --reduced run is a test of the harness, not GPU figures", file=sys.stderr)
        return 2
    text = args.doc.read_text(encoding="utf-8")
    args.doc.write_text(replace_block(text, block, render(document)), encoding="utf-8")
    print(f"{args.doc}: {block} block updated from {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

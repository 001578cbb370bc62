"""Runs the reliability suite and writes its figures into docs/reliability.md.

python scripts/reliability_report.py           # the full size (pytest --long): about 10 minutes
python scripts/reliability_report.py --short   # the form CI runs

Every case of tests/reliability records what it sent or injected and how much was lost; this
script collects those records and replaces the table between the markers of the doc.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "reliability.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"


def run_suite(long: bool, figures: Path) -> int:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "tests/reliability"]
    if long:
        command.append("--long")
    env = {**os.environ, "CORTEX_RELIABILITY_FIGURES": str(figures), "HF_HUB_OFFLINE": "1"}
    print("$", " ".join(command[1:]), flush=True)
    return subprocess.run(command, cwd=REPO, env=env).returncode


def _detail(detail: dict[str, Any]) -> str:
    return ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in detail.items())


def table(rows: list[dict[str, Any]], long: bool, code: int) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    size = "full size (`--long`)" if long else "CI size"
    lines = [
        f"Last run: {when}, {size}, Python {platform.python_version()}, {os.cpu_count()} cores; "
        f"pytest exit code {code}.",
        "",
        "| case | what was sent or injected | sent | lost | detail |",
        "|---|---|---:|---:|---|",
    ]
    for row in rows:
        case = row["case"].removeprefix("test_").split("[")[0].replace("_", " ")
        lines.append(
            f"| {case} | {row['what']} | {row['sent']:,} | {row['lost']:,} | "
            f"{_detail(row['detail'])} |"
        )
    total_sent = sum(int(r["sent"]) for r in rows)
    total_lost = sum(int(r["lost"]) for r in rows)
    lines.append(f"| **all** | {len(rows)} cases | **{total_sent:,}** | **{total_lost:,}** | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the CI size, not --long")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = Path(tmp) / "figures.jsonl"
        code = run_suite(not args.short, figures)
        lines = figures.read_text().splitlines() if figures.exists() else []
    rows = [json.loads(line) for line in lines]
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{table(rows, not args.short, code)}\n{END}{tail}")
    print(f"wrote {len(rows)} figures to {DOC.relative_to(REPO)}")
    return code


if __name__ == "__main__":
    sys.exit(main())

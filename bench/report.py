"""Regenerate bench/README.md's results from one results file: tables, charts, targets.

Every section module (bench/cases/<name>.py) turns its part of the results into markdown with
``report(section, charts)``, writing its PNGs into ``charts``. The hand-written text of the
README outside the ``results`` markers is kept.

    python -m bench.report bench/results/2026-12-01.json
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from bench.lib import ROOT

README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def write(results_path: Path, readme: Path | None = None) -> Path:
    """Rewrite the results part of ``readme`` (bench/README.md by default) from a results file."""
    readme = readme or README
    results: dict[str, Any] = json.loads(results_path.read_text())
    charts = readme.parent / "charts"
    parts = [header(results, results_path, readme)]
    for name, section in results["sections"].items():
        module = importlib.import_module(f"bench.cases.{name}")
        parts.append(module.report(section, charts).rstrip())
    block = f"{BEGIN}\n" + "\n\n".join(parts) + f"\n{END}"
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    readme.write_text(text)
    return readme


def header(results: dict[str, Any], path: Path, readme: Path) -> str:
    m, s = results["machine"], results["settings"]
    where = path.relative_to(readme.parent) if path.is_relative_to(readme.parent) else path
    ours = results["versions"]["cortex"]
    peers = ", ".join(
        f"{peer} {versions.get(_dist(peer), '?')}"
        for peer, versions in results["versions"].items()
        if peer != "cortex"
    )
    return "\n".join(
        [
            f"## Results of `{results['command']}` "
            f"({m['date']}, {results['seconds'] / 60:.0f} min)",
            "",
            f"{m['cpus']} CPUs ({m.get('cpu_model', '?')}), Python {m['python']}, "
            f"load average {_load(m)} at the start, nice {m.get('nice', 0)}; "
            "server on CPU 0 and load generator on "
            f"CPU 1 ({'pinned' if m['pinned'] else 'NOT pinned'}); {s['rounds']} round(s) of "
            f"{s['seconds']:g} s per case, interleaved round-robin; medians, min-max in brackets. "
            f"Every sample and package version: [`{where}`]({where}).",
            "",
            f"Versions: FastAPI {ours.get('fastapi', '?')}, "
            f"Starlette {ours.get('starlette', '?')}, "
            f"uvicorn {ours.get('uvicorn', '?')}, torch {ours.get('torch', '?')}; {peers}.",
        ]
    )


def _load(m: dict[str, Any]) -> str:
    load = m.get("load_average_at_start")
    return "/".join(f"{x:.1f}" for x in load) if load else "?"


def _dist(peer: str) -> str:
    return {"ray": "ray"}.get(peer, peer)


def cell(stat: dict[str, float], fmt: str = "{:.0f}") -> str:
    """A median with its min-max over rounds: ``12,345 (12,001-12,560)``."""
    return f"{fmt.format(stat['median'])} ({fmt.format(stat['min'])}-{fmt.format(stat['max'])})"


def verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    met = value >= target if higher_is_better else value <= target
    return "met" if met else "**missed**"


if __name__ == "__main__":
    print(write(Path(sys.argv[1])))

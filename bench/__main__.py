"""Every benchmark in one run: ``python -m bench`` (or ``bench/run``).

Sections (bench/cases/): overhead, batching, coldstart, operator, gpu. Each peer runs from its
own env (bench/envs.py, built on first use). The run writes ``bench/results/<date>.json``
(machine facts, every package's version, every sample) and regenerates the tables and charts of
bench/README.md from it (bench/report.py).

    python -m bench                          # everything, 3 rounds (~40 min on 2 cores)
    python -m bench --only overhead,coldstart
    python -m bench --smoke --out /tmp/b     # every case for a second or two, cortex + one peer
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench import envs, report
from bench.lib import RESULTS, Settings, machine

SECTIONS = ("overhead", "batching", "coldstart", "operator", "gpu")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per case")
    parser.add_argument("--peers", default=",".join(envs.PEERS), help="comma-separated peers")
    parser.add_argument(
        "--smoke", action="store_true", help="every case for a second or two: cortex + litserve"
    )
    parser.add_argument("--out", type=Path, help="write results, README and charts here instead")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only.split(",")) - set(SECTIONS))
    if unknown:
        parser.error(f"--only: unknown section {unknown[0]!r}; expected some of {SECTIONS}")
    peers = sorted(set(args.peers.split(",")) - set(envs.PEERS))
    if peers:
        parser.error(f"--peers: unknown peer {peers[0]!r}; expected some of {envs.PEERS}")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    settings = (
        Settings(rounds=1, seconds=1.0, warmup=0.5, smoke=True, peers=("litserve",))
        if args.smoke
        else Settings(rounds=args.rounds, seconds=args.seconds, peers=tuple(args.peers.split(",")))
    )
    only = [name for name in SECTIONS if name in args.only.split(",")]
    started = time.monotonic()
    results: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench", *argv]),
        "machine": machine(),
        "settings": settings.as_dict(),
        "versions": {"cortex": envs.versions(sys.executable)},
        "sections": {},
    }
    for peer in settings.peers:
        results["versions"][peer] = envs.versions(envs.python(peer))
    for name in only:
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"bench.cases.{name}")
        section_started = time.monotonic()
        results["sections"][name] = module.run(settings)
        results["sections"][name]["seconds"] = time.monotonic() - section_started
    results["seconds"] = time.monotonic() - started

    out = args.out or RESULTS
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y-%m-%d', time.gmtime())}{'-smoke' if args.smoke else ''}.json"
    path.write_text(json.dumps(results, indent=1) + "\n")
    readme = report.write(path, readme=(args.out / "README.md") if args.out else None)
    print(f"bench: {path} and {readme} written in {results['seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

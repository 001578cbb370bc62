"""Writes the CRD from the spec models into operator/ and the Helm chart's files/.

python scripts/gen_crd.py            # regenerate both copies
python scripts/gen_crd.py --check    # exit 1 if either copy is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cortex.k8s import crd_yaml

REPO = Path(__file__).resolve().parent.parent
CRD_PATHS = (
    REPO / "operator" / "crd.yaml",
    # A template renders it (templates/crd.yaml): Helm never upgrades what is in crds/.
    REPO / "deploy" / "helm" / "cortex" / "files" / "realtimeapis.cortex.dev.yaml",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = crd_yaml()
    stale = 0
    for path in CRD_PATHS:
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if args.check:
            if current != text:
                print(f"{path} is out of date: run python scripts/gen_crd.py", file=sys.stderr)
                stale = 1
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}" if current != text else f"{path} unchanged")
    return stale


if __name__ == "__main__":
    raise SystemExit(main())

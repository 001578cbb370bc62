"""Writes operator/crd.yaml from the spec models; ``--check`` only says whether it is current.

python scripts/gen_crd.py            # regenerate operator/crd.yaml
python scripts/gen_crd.py --check    # exit 1 if operator/crd.yaml is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cortex.k8s import crd_yaml

CRD_PATH = Path(__file__).resolve().parent.parent / "operator" / "crd.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = crd_yaml()
    current = CRD_PATH.read_text(encoding="utf-8") if CRD_PATH.exists() else None
    if args.check:
        if current != text:
            print(f"{CRD_PATH} is out of date: run python scripts/gen_crd.py", file=sys.stderr)
            return 1
        print(f"{CRD_PATH} is up to date")
        return 0
    CRD_PATH.parent.mkdir(exist_ok=True)
    CRD_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {CRD_PATH}" if current != text else f"{CRD_PATH} unchanged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

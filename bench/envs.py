"""Each peer runs from its own virtualenv, built on first use under bench/.envs/ (ignored by git).

A peer's packages are pinned in bench/requirements/<peer>.txt; bench/requirements/constraints.txt
applies to all of them. An env is rebuilt when its requirements change (a hash is kept in it).
Our runtime and the plain ASGI apps run from the project's own venv (the interpreter running the
benchmark), so every case's versions are recorded, never assumed.

    python -m bench.envs            # build every peer's env now (a few minutes the first time)
    python -m bench.envs litserve   # one
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENVS = ROOT / "bench" / ".envs"
REQUIREMENTS = ROOT / "bench" / "requirements"
PEERS = ("litserve", "kserve", "mlserver", "bentoml", "ray")


def _digest(peer: str) -> str:
    text = (REQUIREMENTS / f"{peer}.txt").read_bytes() + (
        REQUIREMENTS / "constraints.txt"
    ).read_bytes()
    return hashlib.sha256(text + sys.version.encode()).hexdigest()


def python(peer: str) -> Path:
    """The interpreter of ``peer``'s env, building the env first if it is missing or stale."""
    if peer not in PEERS:
        raise ValueError(f"unknown peer {peer!r}: expected one of {', '.join(PEERS)}")
    env = ENVS / peer
    interpreter = env / "bin" / "python"
    stamp = env / ".requirements-sha256"
    digest = _digest(peer)
    if interpreter.exists() and stamp.exists() and stamp.read_text() == digest:
        return interpreter
    print(f"bench: building the {peer} env in {env} (first use; a few minutes) ...", flush=True)
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
    subprocess.run([str(interpreter), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run(
        [
            str(interpreter),
            "-m",
            "pip",
            "install",
            "-q",
            "-r",
            str(REQUIREMENTS / f"{peer}.txt"),
            "-c",
            str(REQUIREMENTS / "constraints.txt"),
        ],
        check=True,
    )
    stamp.write_text(digest)
    print(f"bench: {peer} env ready in {time.monotonic() - started:.0f} s", flush=True)
    return interpreter


def versions(interpreter: Path | str) -> dict[str, str]:
    """Every installed distribution of an interpreter's environment, name -> version."""
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    out = subprocess.run([str(interpreter), "-c", code], capture_output=True, text=True, check=True)
    found: dict[str, str] = json.loads(out.stdout)
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def main(argv: list[str]) -> None:
    for peer in argv or PEERS:
        print(f"{peer}: {python(peer)}")


if __name__ == "__main__":
    main(sys.argv[1:])

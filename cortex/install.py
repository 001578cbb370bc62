"""Installs an API's ``predictor.dependencies`` when its pod starts.

``python -m cortex.install PROJECT PIP SHELL TARGET`` is the pod's ``dependencies`` init
container. It runs in the project folder: pip installs the requirements file ``PIP`` into the
folder ``TARGET`` (``--target``: the root filesystem is read-only, so the packages go to an
emptyDir that the ``api`` container has on its ``PYTHONPATH``), then bash runs ``SHELL``. A
missing file is skipped: the CLI already refused a file the spec names and the folder lacks, so
only a default is ever missing here. Their output is the init container's log; an init
container runs to the end before the ``api`` container starts, so neither the startup probe's
clock nor ``/readyz`` begins before the packages are in place.

``TARGET`` is emptied first: a restarted init container starts from nothing, not from half an
install. Exit code 1 and one ``error:`` line when pip or the script fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["main"]


def install(project: Path, pip: str, shell: str, target: Path) -> str | None:
    """Install into ``target``; None when done, else what failed."""
    for entry in target.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if (project / pip).is_file():
        print(f"installing {pip} into {target}", flush=True)
        command = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-input"]
        command += ["--disable-pip-version-check", "--target", str(target), "-r", pip]
        if subprocess.run(command, cwd=project).returncode != 0:
            return f"pip could not install {pip} (its reason is above)"
    else:
        print(f"no {pip} in the project: no packages to install", flush=True)
    if (project / shell).is_file():
        print(f"running {shell}", flush=True)
        code = subprocess.run(["bash", shell], cwd=project).returncode
        if code != 0:
            return f"{shell} exited with code {code}"
    return None


def main(argv: list[str] | None = None) -> int:
    """``PROJECT PIP SHELL TARGET``: install; exit 1 with one ``error:`` line when it failed."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 4:
        print("usage: python -m cortex.install PROJECT PIP SHELL TARGET", file=sys.stderr)
        return 2
    failed = install(Path(args[0]), args[1], args[2], Path(args[3]))
    if failed is not None:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

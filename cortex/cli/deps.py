"""An API's dependencies in the local environment: its requirements file and dependencies.sh.

Requirements go into a virtualenv per distinct file, ``$CORTEX_HOME/deps/<key>``, where the
key is a hash of the file's bytes and of the CLI's interpreter: APIs with the same file share
one, and it is built once. The virtualenv is layered on the CLI's own environment by a ``.pth``
file that adds the CLI's site folders after its own (``site.addsitedir``, so their ``.pth``
files, editable installs included, work too): what the CLI has (cortex, torch) is neither
copied nor reinstalled, pip sees it as installed, and what the file pins wins. It has no pip
of its own; the CLI's pip installs into it (``pip --python``). A build that fails or is cut
short leaves no ``installed`` marker, and the next deploy starts it again from scratch.

``dependencies.sh`` runs with bash in the project folder each time the API's runtime starts,
its output appended to the API's log, as it ran before every replica in Cortex.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

from cortex import errors
from cortex.spec import RealtimeAPI

__all__ = ["MARKER", "python_for", "run_script"]

MARKER = "installed"
_LAYER_FILE = "_cortex_layer.pth"


def python_for(api: RealtimeAPI, project: Path, root: Path, shown: TextIO) -> str:
    """The interpreter to run ``api``'s runtime with: the CLI's own without a requirements
    file, else its virtualenv under ``root``, built now (pip's output on ``shown``) if new."""
    name = api.predictor.dependencies.pip
    requirements = project / name
    if not requirements.is_file():
        return sys.executable
    venv = root / _key(requirements.read_bytes())
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f"{venv.name}.lock"):
        if not (venv / MARKER).exists():
            shown.write(f"api '{api.name}': installing {name} into {venv} (once for this file)\n")
            shown.flush()
            _build(venv, requirements, shown, f"api '{api.name}': pip could not install {name}")
    return str(venv / "bin" / "python")


def run_script(api: RealtimeAPI, project: Path, log: Path, env: Mapping[str, str]) -> None:
    """Run ``dependencies.sh`` (if there is one) with bash, its output appended to ``log``."""
    name = api.predictor.dependencies.shell
    if not (project / name).is_file():
        return
    with log.open("ab") as out:
        out.write(f"running {name}\n".encode())
        out.flush()
        done = subprocess.run(
            ["bash", name], cwd=project, env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    if done.returncode != 0:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        last = lines[-1].strip() if lines else ""
        raise errors.CortexError(
            f"api '{api.name}': {name} exited with code {done.returncode}: {last} "
            f"(its output: `cortex logs {api.name}`)"
        )


def _key(requirements: bytes) -> str:
    digest = hashlib.sha256(sys.executable.encode() + b"\0" + requirements)
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time per file: a second deploy waits, then finds the marker."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _build(venv: Path, requirements: Path, shown: TextIO, failure: str) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], requirements.parent, shown)
    paths = {"base": str(venv), "platbase": str(venv)}
    own = Path(sysconfig.get_path("purelib", vars=paths))
    user = [site.getusersitepackages()] if site.ENABLE_USER_SITE else []
    layer = [*site.getsitepackages(), *user]
    lines = [f"import site; site.addsitedir({folder!r})\n" for folder in layer]
    (own / _LAYER_FILE).write_text("".join(lines), encoding="utf-8")
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install"]
    pip += ["--disable-pip-version-check", "--no-input", "-r", requirements.name]
    output = _run(pip, requirements.parent, shown)
    if output is not None:
        shutil.rmtree(venv, ignore_errors=True)
        raise errors.CortexError(f"{failure}: {_reason(output)}")
    (venv / MARKER).write_text("", encoding="utf-8")


def _run(command: list[str], cwd: Path, shown: TextIO) -> list[str] | None:
    """Run ``command`` with its output streamed to ``shown``; None on success, else its lines."""
    lines: list[str] = []
    with subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        for line in process.stdout or ():
            shown.write(f"  {line}")
            shown.flush()
            lines.append(line.rstrip())
    return None if process.returncode == 0 else lines


def _reason(lines: list[str]) -> str:
    """pip's own reason: its first ``ERROR:`` line, else its last line."""
    errors_ = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR: ")]
    rest = [line for line in lines if line.strip()]
    return (errors_ or rest[-1:] or ["no output"])[0]

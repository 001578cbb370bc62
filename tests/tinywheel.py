"""``tinydep``, a one-module package written as a wheel by hand, and a requirements file that
installs it with no network (``--no-index --find-links``): what dependency tests install."""

from __future__ import annotations

import zipfile
from pathlib import Path

VALUE = "installed from a local wheel"


def write_wheel(folder: Path, version: str = "1.0") -> Path:
    """A pure-Python wheel of ``tinydep`` in ``folder``, whose ``VALUE`` is :data:`VALUE`."""
    folder.mkdir(parents=True, exist_ok=True)
    info = f"tinydep-{version}.dist-info"
    files = {
        "tinydep/__init__.py": f"VALUE = {VALUE!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: tinydep\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    wheel = folder / f"tinydep-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in {**files, f"{info}/RECORD": record}.items():
            archive.writestr(name, text)
    return wheel


def requirements(wheels: Path, line: str = "tinydep==1.0") -> str:
    """A requirements file naming ``line``, looked up in the folder ``wheels`` only."""
    return f"--no-index\n--find-links {wheels}\n{line}\n"

"""predictor.dependencies in the local environment: requirements.txt into a shared virtualenv
built once, dependencies.sh before the runtime starts, ``--no-deps``.

No network: the requirements name ``tinydep``, a wheel each test writes by hand, found with
``--no-index --find-links``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import yaml

from tests.cli.conftest import CLI, FIXTURES, api
from tests.tinywheel import VALUE, requirements, write_wheel

pytestmark = pytest.mark.slow


def write_project(folder: Path, name: str, requirements_text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "deps_user.py", folder / "deps_user.py")
    (folder / "requirements.txt").write_text(requirements_text)
    config = folder / "cortex.yaml"
    config.write_text(yaml.safe_dump([api(name, "deps_user.py")], sort_keys=False))
    return config


def answer(cli: CLI, name: str) -> dict[str, str]:
    url = f"http://127.0.0.1:{cli.port(name)}/{name}"
    return httpx.post(url, json={}, timeout=30, trust_env=False).json()


def test_requirements_install_once_and_a_second_api_with_the_same_file_reuses_them(
    cli: CLI, tmp_path: Path
) -> None:
    text = requirements(write_wheel(tmp_path / "wheels").parent)
    write_project(cli.project, "first", text)
    other = write_project(tmp_path / "other", "second", text)

    first = cli("deploy")
    [venv] = [path for path in (cli.home / "deps").iterdir() if path.is_dir()]
    built = (venv / "installed").stat().st_mtime_ns
    second = cli("deploy", str(other))

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert f"api 'first': installing requirements.txt into {venv}" in first.stderr
    assert "Successfully installed tinydep-1.0" in first.stderr  # pip's output, streamed
    assert "installing" not in second.stderr
    assert (venv / "installed").stat().st_mtime_ns == built
    for name in ("first", "second"):
        assert answer(cli, name) == {"tinydep": VALUE, "python": str(venv / "bin" / "python")}


def test_changed_requirements_restart_the_api_on_a_new_virtualenv(cli: CLI, tmp_path: Path) -> None:
    wheels = write_wheel(tmp_path / "wheels").parent
    write_wheel(wheels, version="2.0")
    write_project(cli.project, "changing", requirements(wheels, "tinydep==1.0"))
    cli.ok("deploy")
    before = answer(cli, "changing")["python"]

    (cli.project / "requirements.txt").write_text(requirements(wheels, "tinydep==2.0"))
    cli.ok("deploy")
    after = answer(cli, "changing")["python"]

    venvs = {
        str(path / "bin" / "python") for path in (cli.home / "deps").iterdir() if path.is_dir()
    }
    assert before != after
    assert venvs == {before, after}


def test_a_broken_requirements_file_fails_with_pips_reason_in_one_error_line(
    cli: CLI, tmp_path: Path
) -> None:
    write_project(cli.project, "broken", requirements(tmp_path, "no-such-package==9.9"))

    result = cli("deploy")

    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line == (
        "error: api 'broken': pip could not install requirements.txt: Could not find a version "
        "that satisfies the requirement no-such-package==9.9 (from versions: none)"
    )
    assert not (cli.home / "local" / "broken" / "meta.json").exists()
    assert not any(path.is_dir() for path in (cli.home / "deps").iterdir())


def test_no_deps_skips_the_requirements(cli: CLI, tmp_path: Path) -> None:
    write_project(cli.project, "skipped", requirements(tmp_path, "no-such-package==9.9"))
    (cli.project / "deps_user.py").write_text((FIXTURES / "greeter.py").read_text())

    result = cli("deploy", "--no-deps")

    assert result.returncode == 0, result.stderr
    assert not (cli.home / "deps").exists()


def test_dependencies_sh_runs_before_the_runtime_and_its_output_is_in_the_log(
    cli: CLI, tmp_path: Path
) -> None:
    cli.write(api("greeter"))
    script = 'test -f greeter.py && echo "prepared in $(basename "$PWD")" > prepared.txt\n'
    (cli.project / "dependencies.sh").write_text(script + "echo from dependencies.sh\n")

    cli.ok("deploy")
    logs = cli.ok("logs", "greeter")

    assert "from dependencies.sh" in logs
    assert (cli.project / "prepared.txt").read_text() == "prepared in project\n"


def test_a_failing_dependencies_sh_is_one_error_line_and_starts_nothing(cli: CLI) -> None:
    cli.write(api("greeter"))
    (cli.project / "dependencies.sh").write_text("echo 'apt-get: not allowed' && exit 3\n")

    result = cli("deploy")

    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line == (
        "error: api 'greeter': dependencies.sh exited with code 3: apt-get: not allowed "
        "(its output: `cortex logs greeter`)"
    )
    assert not (cli.home / "local" / "greeter" / "meta.json").exists()

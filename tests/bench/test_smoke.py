"""``python -m bench --smoke`` runs every section end to end (cortex and one peer, a second or two
per case), so the benchmarks never rot. Nothing about speed is judged here: bench/README.md does
that from a full run. What is checked is that every case measured something real, and that the
report (tables, charts) is built from the results file alone."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import tools

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {"overhead", "batching", "coldstart", "operator", "gpu"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tools.require("wrk")
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.mark.timeout(960)
def test_every_section_writes_its_samples_and_the_versions(smoke: Path) -> None:
    (path,) = smoke.glob("*-smoke.json")
    results = json.loads(path.read_text())
    assert set(results["sections"]) == SECTIONS
    assert results["versions"]["cortex"]["cortex-serving"]
    assert results["versions"]["litserve"]["litserve"]
    assert results["machine"]["cpus"] >= 1


@pytest.mark.timeout(960)
def test_the_report_links_charts_that_exist(smoke: Path) -> None:
    readme = (smoke / "README.md").read_text()
    for heading in ("overhead", "batching", "coldstart", "operator", "gpu"):
        assert f"(section `{heading}`)" in readme
    charts = re.findall(r"!\[[^\]]*\]\((charts/[^)]+\.png)\)", readme)
    assert charts
    for chart in charts:
        assert (smoke / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", chart


@pytest.mark.timeout(960)
def test_the_report_is_rebuilt_from_the_results_file_alone(smoke: Path, tmp_path: Path) -> None:
    (path,) = smoke.glob("*-smoke.json")
    readme = tmp_path / "README.md"
    readme.write_text("# kept\n\nhand-written text\n")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from bench import report; "
            "from pathlib import Path; report.write(Path(sys.argv[1]), Path(sys.argv[2]))",
            str(path),
            str(readme),
        ],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    text = readme.read_text()
    assert text.startswith("# kept\n\nhand-written text\n")
    assert text.count("<!-- results:begin -->") == 1
    assert (tmp_path / "charts").is_dir()

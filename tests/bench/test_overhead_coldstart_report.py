"""The overhead and cold-start sections' README, made from results alone (no servers run)."""

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from bench.cases import coldstart, overhead


def served(rps: float, p50: float = 1.0, p99: float = 2.0, errors: float = 0) -> dict[str, Any]:
    return {
        "rps": rps,
        "p50_ms": p50,
        "p99_ms": p99,
        "cpu_us_per_request": 1e6 / rps,
        "non_2xx": errors,
        "socket_errors": 0.0,
        "processes": 1,
    }


def section(cases: dict[str, tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    return {
        "connections": 64,
        "cases": {
            name: {"group": group, "command": "", "samples": s, **overhead.summary(s)}
            for name, (group, s) in cases.items()
        },
    }


def test_ratios_are_taken_round_by_round() -> None:
    # Round 2 ran on a slower machine: both cases halved, the ratio did not move.
    result = section(
        {
            "FastAPI async def": ("floor", [served(1000), served(500)]),
            "cortex async": ("cortex", [served(2000), served(1000)]),
        }
    )
    assert overhead.ratio(result, "cortex async", "FastAPI async def") == {
        "median": 2.0,
        "min": 2.0,
        "max": 2.0,
    }


def test_a_case_that_did_not_serve_is_listed_and_not_judged(tmp_path: Path) -> None:
    result = section(
        {
            "FastAPI async def": ("floor", [served(1000)]),
            "cortex async": ("cortex", [served(4000)]),
            "KServe": ("peer", [{"error": "answered 404: {'error': 'not found'}"}]),
        }
    )
    text = overhead.report(result, tmp_path)
    assert "- KServe: 1 round(s) failed: `answered 404" in text
    assert "| KServe |" not in text
    assert "vs KServe" not in text
    assert "| cortex async vs FastAPI `async def` | >= 1.2x | 4.00x | met |" in text
    assert (tmp_path / "overhead-rps.png").exists()


def test_errors_under_load_are_visible(tmp_path: Path) -> None:
    result = section(
        {
            "FastAPI async def": ("floor", [served(1000)]),
            "cortex async": ("cortex", [served(900, p50=1.0, p99=5.0, errors=7)]),
        }
    )
    text = overhead.report(result, tmp_path)
    assert "| 1 | **7** |" in text
    assert "| p99 / p50, cortex async | <= 3x | 5.0x | **missed** |" in text


def cold(total: float, rss: float, pss: float, worker: float) -> dict[str, Any]:
    idle = [{"pid": 1, "command": "x", "rss_mb": rss - worker, "pss_mb": pss}]
    return {
        "total_s": total,
        "python_s": 0.02,
        "imports_s": 0.3,
        "init_s": 0.2,
        "overhead_s": total - 0.5,
        "idle": idle,
        "idle_rss_mb": rss,
        "idle_pss_mb": pss,
        "idle_root_rss_mb": rss - worker,
        "idle_others_rss_mb": worker,
        "load": {"peak_rss_mb": rss, "peak_pss_mb": pss, "rps": 1.0, "errors": 0},
    }


def test_cold_start_memory_compares_like_with_like(tmp_path: Path) -> None:
    frameworks = {"FastAPI": [cold(0.5, 50, 40, 0)], "cortex": [cold(0.9, 100, 48, 50)]}
    result = {
        "init_seconds": 0.2,
        "frameworks": {n: {"samples": s, **coldstart.summary(s)} for n, s in frameworks.items()},
    }
    text = coldstart.report(result, tmp_path)
    assert "| cortex's own cold-start overhead | <= 0.3 s | 0.40 s | **missed** |" in text
    assert "master + worker vs FastAPI's process | <= 1.2x | 2.00x | **missed** |" in text
    assert "idle PSS, master + worker vs FastAPI's process | <= 1.2x | 1.20x | met |" in text
    assert "the worker alone vs FastAPI's process | <= 1.2x | 1.00x | met |" in text

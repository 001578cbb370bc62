"""The batching section's targets: ratios taken round by round from the results file alone."""

from __future__ import annotations

from typing import Any

from bench.cases import batching


def section(**rps: list[float]) -> dict[str, Any]:
    """A results section with req/s per round at 64 clients, one case per ``framework_batching``."""
    cases = {}
    for key, rounds in rps.items():
        framework, on = key.rsplit("_", 1)
        points = {"64": [{"rps": r, "cpu_us_per_request": 1e6 / r} for r in rounds]}
        cases[key] = {"framework": framework, "batching": on == "on", "points": points}
    return {"clients": [64], "cases": cases}


def test_targets_pair_the_rounds_and_take_the_median_of_their_ratios() -> None:
    found = batching.targets(
        section(cortex_off=[100, 50, 100], cortex_on=[300, 200, 250], litserve_on=[150, 250, 250])
    )
    (speedup, value, goal), (versus, ahead, even) = found
    assert "3x unbatched" in speedup and goal == 3.0
    assert value == {"median": 3.0, "min": 2.5, "max": 4.0}  # 300/100, 200/50, 250/100
    assert "LitServe" in versus and even == 1.0
    assert ahead == {"median": 1.0, "min": 0.8, "max": 2.0}


def test_the_litserve_target_is_left_out_when_litserve_did_not_run() -> None:
    found = batching.targets(section(cortex_off=[100], cortex_on=[310]))
    assert [target for target, _, _ in found] == ["cortex batching >= 3x unbatched at 64 clients"]


def test_a_missed_speedup_with_full_batches_is_put_down_to_the_model() -> None:
    results = section(cortex_off=[100], cortex_on=[250])
    mean_batch = {"median": 31.5, "min": 31.5, "max": 31.5}
    results["cases"]["cortex_on"]["summary"] = {"64": {"mean_batch": mean_batch}}
    (why,) = [line for line in batching._why_missed(results) if line]
    assert "missed 3x" in why and "batches were full (mean 31.5 of 32)" in why


def test_a_met_speedup_needs_no_explanation() -> None:
    assert batching._why_missed(section(cortex_off=[100], cortex_on=[300])) == []

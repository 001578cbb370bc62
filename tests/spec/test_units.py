"""Durations, Kubernetes quantities and int-or-percent values, parsed and written back."""

from __future__ import annotations

import re

import pytest

from cortex.spec import (
    cpu_millicores,
    format_duration,
    mem_bytes,
    parse_duration,
    parse_quantity,
    parse_specs,
)
from cortex.spec.units import DURATION_PATTERN, QUANTITY_PATTERN


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10ms", 0.01),
        ("500ms", 0.5),
        ("2s", 2.0),
        ("60s", 60.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1.5s", 1.5),
        ("0s", 0.0),
        ("60", 60.0),
        (60, 60.0),
        (0.25, 0.25),
    ],
)
def test_duration_parses_to_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-1s", "5 minutes", "1d", "ms", "", "1.s"])
def test_invalid_duration_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.01, "10ms"),
        (0.5, "500ms"),
        (1.5, "1500ms"),
        (0.0005, "0.5ms"),
        (2.0, "2s"),
        (90.0, "90s"),
        (60.0, "1m"),
        (300.0, "5m"),
        (3600.0, "1h"),
        (5400.0, "90m"),
        (0.0, "0s"),
    ],
)
def test_duration_formats_in_largest_whole_unit(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10ms", "2s", "1m30s", "60", "1.5h"])
def test_duration_pattern_matches_what_the_parser_accepts(text: str) -> None:
    assert re.fullmatch(DURATION_PATTERN, text)


def test_batch_interval_is_float_seconds_in_the_model_and_text_in_json() -> None:
    text = """\
- name: x
  kind: RealtimeAPI
  predictor:
    type: python
    path: p.py
    threads_per_process: 8
    server_side_batching: {max_batch_size: 8, batch_interval: 10ms}
  autoscaling: {window: 120s, upscale_stabilization_period: 0s}
"""
    [api] = parse_specs(text)

    batching = api.predictor.server_side_batching
    assert batching is not None
    assert batching.batch_interval == 0.01
    assert api.autoscaling.window == 120.0
    dumped = api.model_dump(mode="json")
    assert dumped["predictor"]["server_side_batching"]["batch_interval"] == "10ms"
    assert dumped["autoscaling"]["window"] == "2m"
    assert dumped["autoscaling"]["upscale_stabilization_period"] == "0s"
    assert api.model_dump()["autoscaling"]["window"] == 120.0


@pytest.mark.parametrize(
    ("quantity", "millicores"),
    [("200m", 200), ("1", 1000), ("0.5", 500), (2, 2000), (2.5, 2500), ("1500u", 2), ("1k", 10**6)],
)
def test_cpu_millicores(quantity: str | float, millicores: int) -> None:
    assert cpu_millicores(quantity) == millicores


@pytest.mark.parametrize(
    ("quantity", "size"),
    [
        ("512Mi", 512 * 2**20),
        ("2Gi", 2 * 2**30),
        ("1G", 10**9),
        ("1.5Gi", 3 * 2**29),
        ("100M", 10**8),
        ("1e3", 1000),
        ("1E", 10**18),
        ("2Ei", 2 * 2**60),  # an exbibyte suffix, not an exponent
        (1024, 1024),
        ("0.5", 1),
    ],
)
def test_mem_bytes(quantity: str | float, size: int) -> None:
    assert mem_bytes(quantity) == size


@pytest.mark.parametrize("text", ["lots", "-1", "1 Gi", "1gi", "Mi", "1.2.3", ""])
def test_invalid_quantity_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        parse_quantity(text)
    assert not re.fullmatch(QUANTITY_PATTERN, text)


@pytest.mark.parametrize("text", ["1e999999", "1e-999999", "1e308", "99999999999Ei"])
@pytest.mark.timeout(5)
def test_quantities_beyond_what_kubernetes_holds_are_refused_at_once(text: str) -> None:
    # 1e999999 used to become an integer of a million digits: 20 s of CPU per parse
    with pytest.raises(ValueError, match=r"too (large|small)"):
        parse_quantity(text)
    with pytest.raises(ValueError):
        mem_bytes(text)


def test_quantities_are_kept_as_given_and_numbers_cast_to_text() -> None:
    text = """\
- name: x
  kind: RealtimeAPI
  predictor: {type: python, path: p.py}
  compute: {cpu: 1, mem: 2Gi, gpu: 1}
- name: y
  kind: RealtimeAPI
  predictor: {type: python, path: p.py}
  compute: {cpu: 0.5, mem: 536870912}
"""
    x, y = parse_specs(text)

    assert (x.compute.cpu, x.compute.mem, x.compute.gpu) == ("1", "2Gi", 1)
    assert (y.compute.cpu, y.compute.mem) == ("0.5", "536870912")
    assert y.model_dump(mode="json")["compute"] == {"cpu": "0.5", "mem": "536870912", "gpu": 0}


def test_cpu_may_be_null_for_no_request() -> None:
    [api] = parse_specs(
        "- {name: x, kind: RealtimeAPI, predictor: {type: python, path: p.py}, "
        "compute: {cpu: null}}"
    )

    assert api.compute.cpu is None

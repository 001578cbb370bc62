"""The local backend's parts without processes: metrics text, log files, ports, state files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cortex.cli import logfile, probe, processes, state
from cortex.contracts import RuntimeState, RuntimeStatus

METRICS = """\
# HELP cortex_in_flight_requests Requests being processed by this replica.
# TYPE cortex_in_flight_requests gauge
cortex_in_flight_requests{api_name="echo"} 0.0
cortex_requests_total{api_name="echo",status_code="2XX"} 7.0
cortex_requests_total{api_name="echo",status_code="3XX"} 0.0
cortex_requests_total{api_name="echo",status_code="4XX"} 2.0
cortex_requests_total{api_name="echo",status_code="5XX"} 1.0
cortex_requests_total{api_name="other",status_code="2XX"} 99.0
cortex_request_duration_seconds_bucket{api_name="echo",le="0.001"} 9.0
cortex_request_duration_seconds_count{api_name="echo"} 10.0
cortex_request_duration_seconds_sum{api_name="echo"} 0.05
"""


def test_metrics_are_read_per_status_class_for_the_named_api() -> None:
    counts = probe.parse_metrics(METRICS, "echo")
    assert counts.by_class == {"2XX": 7, "3XX": 0, "4XX": 2, "5XX": 1}
    assert counts.avg_seconds == pytest.approx(0.005)


def test_metrics_without_requests_have_no_average() -> None:
    counts = probe.parse_metrics("garbage\ncortex_requests_total{} NaN\n", "echo")
    assert counts.avg_seconds is None


def record(level: str, message: str, **extra: str) -> str:
    return json.dumps({"time": "t", "level": level, "message": message, **extra})


def test_last_error_is_the_last_error_record_or_plain_error_line() -> None:
    assert logfile.last_error([record("error", "a"), record("info", "b")]) == "a"
    assert logfile.last_error([record("error", "a"), "error: spec.yaml: line 2: bad"]) == (
        "spec.yaml: line 2: bad"
    )
    assert logfile.last_error([record("info", "fine"), "plain text"]) is None


def test_log_lines_are_read_from_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text("old run\n")
    offset = log.stat().st_size
    with log.open("a") as handle:
        handle.write("new 1\nnew 2\n")
    assert logfile.read_lines(log, offset) == ["new 1", "new 2"]
    assert logfile.read_lines(log, 0, max_bytes=8) == ["new 2"]  # the cut line is dropped
    assert logfile.read_lines(tmp_path / "missing.log") == []


def test_tail_counts_rendered_lines() -> None:
    lines = [record("info", str(i)) for i in range(20)]
    shown = logfile.tail(lines, count=3)
    assert [line.split()[-1] for line in shown] == ["17", "18", "19"]


def test_follow_without_waiting_yields_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text("one\ntwo\npartial")
    assert list(logfile.follow(log, keep_going=lambda: False)) == ["one", "two"]


def test_listen_on_first_free_skips_ports_of_local_apis_and_ports_in_use() -> None:
    with processes.listen(0) as busy:
        first = busy.getsockname()[1]  # held: the next search must step over it
        taken = {first + 1}
        with processes.listen_on_first_free(taken, first=first) as sock:
            assert sock.getsockname()[1] > first + 1


def test_listen_on_a_held_port_fails() -> None:
    with processes.listen(0) as held, pytest.raises(OSError):
        processes.listen(held.getsockname()[1])


def test_a_listening_port_is_in_use_and_a_closed_one_is_not() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert processes.port_in_use(port)
    assert not processes.port_in_use(port)


def test_a_pid_is_ours_only_while_it_runs_the_runtime_with_our_marker() -> None:
    assert not processes.is_ours(os.getpid(), "cortex.yaml")  # alive, but pytest
    assert not processes.is_ours(0, "x")
    assert not processes.is_ours(2**22 + 12345, "x")  # above pid_max: never a process


def meta(**fields: object) -> state.Meta:
    values: dict[str, object] = {
        "name": "a",
        "kind": "RealtimeAPI",
        "pid": 1,
        "port": 9000,
        "project_dir": "/p",
        "endpoint": "/a",
        "spec_hash": "h",
        "created": 1.0,
        "updated": 2.0,
    }
    return state.Meta(**{**values, **fields})  # type: ignore[arg-type]


def test_state_lists_apis_with_readable_meta_files_only(tmp_path: Path) -> None:
    local = state.LocalState(tmp_path / "local")
    assert local.names() == []
    local.write_meta(meta(name="b"))
    local.write_meta(meta(name="a"))
    (tmp_path / "local" / "broken").mkdir()
    (tmp_path / "local" / "broken" / "meta.json").write_text("{not json")
    assert local.names() == ["a", "b"]
    assert local.read_meta("a") == meta(name="a")
    local.remove("a")
    assert local.names() == ["b"]


@pytest.mark.parametrize(
    "text",
    ["", "[]", '{"pid": 1}', '{"pid": "x", "port": 1, "state": "ready", "spec_hash": "h"}'],
)
def test_a_malformed_status_file_reads_as_missing(tmp_path: Path, text: str) -> None:
    local = state.LocalState(tmp_path)
    local.files("a").folder.mkdir()
    local.files("a").status.write_text(text)
    assert local.read_status("a") is None


def test_a_status_file_is_read(tmp_path: Path) -> None:
    local = state.LocalState(tmp_path)
    local.files("a").folder.mkdir()
    data = {"pid": 5, "port": 9, "state": "ready", "spec_hash": "h", "cause": None, "updated": 3}
    local.files("a").status.write_text(json.dumps(data))
    assert local.read_status("a") == RuntimeStatus(5, 9, RuntimeState.READY, "h", None, 3.0)

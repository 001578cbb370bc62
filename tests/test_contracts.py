"""The shared contracts: the status file round-trips, the runtime command line is built one way."""

from __future__ import annotations

from cortex import contracts
from cortex.contracts import Flag, RuntimeArgs, RuntimeState, RuntimeStatus


def test_status_record_round_trips_with_its_cause() -> None:
    status = RuntimeStatus(
        pid=12, port=40123, state=RuntimeState.FAILED, spec_hash="abc", cause="boom", updated=1.5
    )
    assert RuntimeStatus.from_json(status.to_json()) == status


def test_status_record_from_garbage_is_none() -> None:
    assert RuntimeStatus.from_json("{half") is None
    assert RuntimeStatus.from_json('{"pid": 1}') is None
    assert RuntimeStatus.from_json('["not", "a", "record"]') is None
    unknown_state = '{"pid":1,"port":2,"state":"dancing","spec_hash":"x","updated":0}'
    assert RuntimeStatus.from_json(unknown_state) is None


def test_runtime_command_leaves_defaults_out() -> None:
    assert contracts.runtime_command(RuntimeArgs(), python="py") == ["py", "-m", "cortex.runtime"]


def test_runtime_command_spells_every_flag() -> None:
    args = RuntimeArgs(
        spec="s.yaml",
        spec_env="VAR",
        api="a",
        project_dir="/p",
        host="h",
        port=0,
        max_body_bytes=10,
        access_log=True,
        drain_grace=1.5,
        graceful_timeout=3,
        status_file="st.json",
    )
    argv = args.argv()
    assert all(type(item) is str for item in argv)
    assert argv[argv.index("--port") + 1] == "0"
    assert {item for item in argv if item.startswith("--")} == {flag.value for flag in Flag}

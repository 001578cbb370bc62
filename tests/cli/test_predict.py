"""``cortex predict`` through the real CLI against real local runtimes: query parameters and
headers reach the predictor, and a stream is printed while it is still open."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.cli.conftest import CLI, api

pytestmark = pytest.mark.slow

LINE_WAIT = 60.0  # seconds for a chunk to be printed (the machine may be loaded)


def test_query_parameters_and_headers_reach_the_predictor(cli: CLI) -> None:
    cli.write(api("echo", "echo_request.py"))
    cli.ok("deploy")

    answer = cli.ok(
        "predict", "echo", "-d", "{}", "-q", "model=sentiment", "-q", "tag=a", "-q", "tag=b=c",
        "-H", "X-Trace: abc 1", "-H", "x-empty:",
    )  # fmt: skip

    assert json.loads(answer) == {
        "type": "dict",
        "query": [["model", "sentiment"], ["tag", "a"], ["tag", "b=c"]],
        "headers": {"x-trace": "abc 1", "x-empty": ""},
    }


def test_a_content_type_header_wins_over_the_guessed_one(cli: CLI) -> None:
    cli.write(api("echo", "echo_request.py"))
    cli.ok("deploy")

    answer = cli.ok("predict", "echo", "-d", '{"a": 1}', "-H", "content-type: text/plain")

    assert json.loads(answer)["type"] == "str"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("-q", "model"), "error: -q 'model' must be KEY=VALUE, e.g. -q model=sentiment\n"),
        (
            ("-H", "X-Trace abc"),
            "error: -H 'X-Trace abc' must be 'NAME: VALUE', e.g. -H 'Accept: text/event-stream'\n",
        ),
    ],
)
def test_a_malformed_query_or_header_is_one_error_line(
    cli: CLI, args: tuple[str, str], error: str
) -> None:
    result = cli("predict", "anything", "-d", "{}", *args)

    assert (result.returncode, result.stderr) == (1, error)


@pytest.mark.parametrize(
    ("accept", "printed"),
    [
        ((), ['{"i":0}', '{"i":1}']),  # raw chunks, as the predictor framed them
        (("-H", "Accept: text/event-stream"), ['{"i":0}', '{"i":1}']),  # each event's data
    ],
)
def read_gated_stream(cli: CLI, gates: Path, *args: str) -> tuple[bool, list[str], int, str]:
    """Run ``cortex predict tokens -d {} ARGS`` against the gated_stream.py API, opening its
    gates one at a time: whether the CLI was still running after printing the first chunk
    (so it printed it as it arrived), the two lines printed, its exit code and stderr."""
    command = [sys.executable, "-m", "cortex.cli.main", "predict", "tokens", "-d", "{}", *args]
    errors = gates.parent / "stderr"
    lines: queue.Queue[bytes] = queue.Queue()
    with (
        errors.open("wb") as stderr,
        subprocess.Popen(
            command, cwd=cli.project, env=cli.env, stdout=subprocess.PIPE, stderr=stderr
        ) as proc,
    ):
        assert proc.stdout is not None
        reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()])
        reader.start()
        try:
            (gates / "0").touch()
            first = lines.get(timeout=LINE_WAIT)
            still_open = proc.poll() is None  # the second chunk waits until its gate opens
            (gates / "1").touch()
            second = lines.get(timeout=LINE_WAIT)
            code = proc.wait(LINE_WAIT)
        finally:
            proc.kill()
            reader.join(LINE_WAIT)
    printed = [first.decode().rstrip("\n"), second.decode().rstrip("\n")]
    return still_open, printed, code, errors.read_text()


@pytest.mark.parametrize(
    ("accept", "printed"),
    [
        ((), ['{"i":0}', '{"i":1}']),  # raw chunks, as the predictor framed them
        (("-H", "Accept: text/event-stream"), ['{"i":0}', '{"i":1}']),  # each event's data
    ],
)
def test_a_stream_is_printed_as_it_arrives(
    cli: CLI, tmp_path: Path, accept: tuple[str, ...], printed: list[str]
) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    cli.write(api("tokens", "gated_stream.py", gates=str(gates)))
    cli.ok("deploy")

    still_open, shown, code, stderr = read_gated_stream(cli, gates, *accept)

    assert still_open
    assert shown == printed
    assert code == 0, stderr


def _curl_example(shown: str) -> str:
    lines = shown.splitlines()
    return lines[lines.index("example curl:") + 1].strip()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_get_prints_a_curl_example_made_from_sample_json_that_works(cli: CLI) -> None:
    cli.write(api("labels", "labeller.py"))
    (cli.project / "sample.json").write_text('{\n  "text": "a good day"\n}\n')
    cli.ok("deploy")

    command = _curl_example(cli.ok("get", "labels"))
    curl = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)

    assert """-d '{"text": "a good day"}'""" in command
    assert json.loads(curl.stdout) == {"label": "positive"}


def test_without_sample_json_the_curl_example_says_its_body_is_a_placeholder(cli: CLI) -> None:
    cli.write(api("labels", "labeller.py"))
    cli.ok("deploy")

    shown = cli.ok("get", "labels")

    assert """-d '{"key": "value"}'""" in _curl_example(shown)
    assert "(a placeholder body: put one that works in the project's sample.json)" in shown

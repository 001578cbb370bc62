"""The API commands: ``deploy``, ``get``, ``logs``, ``predict``, ``delete``.

Each parses its arguments, calls the chosen ``Environment`` and prints; the wording lives in
``cortex.cli.format``. User errors are raised as ``CortexError`` (``main`` prints one line).
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import click
from click.shell_completion import CompletionItem

from cortex import errors
from cortex.cli import config, environment, format, progress, sse
from cortex.contracts import APIState
from cortex.spec import load_specs

__all__ = ["delete", "deploy", "get", "logs", "predict"]

DEPLOY_TIMEOUT = 15 * 60.0  # model loading can take minutes; past this, stop waiting
WATCH_INTERVAL = 2.0
_SHOWN_BODY = 2000
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name (RFC 9110 token)


def _complete_api(ctx: click.Context, _: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        names = config.open_environment(ctx.params.get("env_name")).names()
    except Exception:  # completion must never print an error into the user's shell
        return []
    return [CompletionItem(name) for name in names if name.startswith(incomplete)]


env_option = click.option(
    "-e", "--env", "env_name", metavar="ENV", help="environment (default: the default one)"
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(["pretty", "json"]),
    default="pretty",
    show_default=True,
    help="text for people, or JSON for scripts",
)


@click.command()
@click.argument("config_path", metavar="CONFIG", default="cortex.yaml", type=click.Path())
@env_option
@click.option("-y", "--yes", is_flag=True, help="answer yes to every question")
@click.option(
    "--wait/--no-wait",
    default=None,
    help="wait until the APIs are live (default: locally yes, on a cluster no)",
)
@click.option(
    "--no-deps",
    is_flag=True,
    help="locally: skip predictor.dependencies (requirements.txt, dependencies.sh)",
)
@click.option("--force", is_flag=True, help="reload local APIs even if nothing changed")
@output_option
def deploy(
    config_path: str,
    env_name: str | None,
    yes: bool,
    wait: bool | None,
    no_deps: bool,
    force: bool,
    output: str,
) -> None:
    """Deploy APIs (locally: and wait until they are live).

    CONFIG is a cortex.yaml (default: ./cortex.yaml) or a folder holding one. An API whose spec
    or project files changed is updated with no downtime; an unchanged one is left as it is
    (locally, --force reloads it anyway). Locally, a requirements.txt is installed into a
    virtualenv once per distinct file (its progress shown on stderr) and reused after.
    """
    path = Path(config_path)
    path = path / "cortex.yaml" if path.is_dir() else path
    apis = load_specs(path)
    env = config.open_environment(env_name)
    deployments = env.deploy(apis, path, _confirmer(yes), force, deps=not no_deps)
    pretty = output == "pretty"
    for deployment in deployments if pretty else ():
        click.echo(format.deploy_line(deployment))
    if not (env.waits_by_default if wait is None else wait):
        if not pretty:
            click.echo(json.dumps([_deploy_json(d, None) for d in deployments], indent=2))
        return
    shown = progress.Progress(sys.stdout) if pretty else None
    outcomes = _wait(env, deployments, shown)
    failed = [d for d in deployments if outcomes[d.name].state != "ready"]
    if pretty:
        for deployment in deployments:
            if deployment not in failed:
                click.echo(f"{deployment.name} is live at {deployment.endpoint}")
    else:
        click.echo(json.dumps([_deploy_json(d, outcomes[d.name]) for d in deployments], indent=2))
    if failed:
        raise errors.CortexError(_failure(failed, outcomes))


def _confirmer(yes: bool) -> Callable[[str], bool]:
    def confirm(question: str) -> bool:
        if yes:
            return True
        return sys.stdin.isatty() and click.confirm(question, default=False)

    return confirm


def _wait(
    env: environment.Environment,
    deployments: Sequence[environment.Deployment],
    shown: progress.Progress | None,
) -> dict[str, environment.Rollout]:
    """Poll every deployment until it is ready or failed (or the deploy timeout passes)."""
    outcomes: dict[str, environment.Rollout] = {}
    pending = list(deployments)
    deadline = time.monotonic() + DEPLOY_TIMEOUT
    try:
        while pending:
            states = {d.name: env.rollout(d) for d in pending}
            outcomes.update({n: r for n, r in states.items() if r.state != "pending"})
            pending = [d for d in pending if states[d.name].state == "pending"]
            if pending and time.monotonic() > deadline:
                return outcomes | {d.name: _timed_out(d.name) for d in pending}
            if pending and shown is not None:
                waiting = ", ".join(f"{d.name} ({states[d.name].detail})" for d in pending)
                shown.update(f"waiting for {waiting}")
            if pending:
                time.sleep(env.poll_seconds)
    except KeyboardInterrupt:
        raise errors.CortexError(
            "stopped waiting; the APIs keep starting in the background (see `cortex get`)"
        ) from None
    finally:
        if shown is not None:
            shown.finish()
    return outcomes


def _timed_out(name: str) -> environment.Rollout:
    minutes = int(DEPLOY_TIMEOUT // 60)
    return environment.Rollout(
        "failed",
        f"not live after {minutes} minutes; it keeps loading in the background "
        f"(see `cortex get {name}` and `cortex logs {name}`)",
    )


def _deploy_json(
    deployment: environment.Deployment, outcome: environment.Rollout | None
) -> dict[str, object]:
    """One API of ``deploy -o json``; without waiting (``outcome`` None) it is updating."""
    status = APIState.UPDATING
    if outcome is not None:
        status = APIState.LIVE if outcome.state == "ready" else APIState.ERROR
    return {
        "name": deployment.name,
        "kind": deployment.kind,
        "action": deployment.action,
        "endpoint": deployment.endpoint,
        "status": status,
        "error": outcome.detail if outcome is not None and outcome.state == "failed" else None,
    }


def _failure(
    failed: Sequence[environment.Deployment], outcomes: dict[str, environment.Rollout]
) -> str:
    """``api 'x' failed to start: <why>``, then the log tail, indented."""
    first = failed[0]
    outcome = outcomes[first.name]
    verb = "start" if first.action == "create" else "update"
    lines = [f"api '{first.name}' failed to {verb}: {outcome.detail}"]
    if len(failed) > 1:
        lines[0] += f" (also failed: {', '.join(d.name for d in failed[1:])})"
    if outcome.log_tail:
        lines += [f"last log lines of {first.name}:", *(f"  {x}" for x in outcome.log_tail)]
    return "\n".join(lines)


@click.command()
@click.argument("name", required=False, shell_complete=_complete_api)
@env_option
@click.option("-w", "--watch", is_flag=True, help=f"refresh every {WATCH_INTERVAL:g} seconds")
@output_option
def get(name: str | None, env_name: str | None, watch: bool, output: str) -> None:
    """Show the status of APIs.

    Without NAME: a table of every API of the environment. With NAME: that API's row, its
    endpoint, a curl example and, when something failed, the reason and the last log lines.
    """
    env = config.open_environment(env_name)

    def render() -> str:
        statuses = env.get(name)
        if output == "json":
            return json.dumps([s.to_json() for s in statuses], indent=2)
        if name is not None:
            return format.api_details(statuses[0], time.time())
        if not statuses:
            return f"no apis are deployed in environment '{env.name}'"
        return format.status_table(statuses, time.time())

    if not watch:
        click.echo(render())
        return
    tty = sys.stdout.isatty()
    # Ctrl-C sets a flag, checked between refreshes: a KeyboardInterrupt raised in the middle
    # of an HTTP call can leave the client's connection pool locked, and the command hung.
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        while not stop.is_set():
            text = render()
            if tty:
                click.clear()
            click.echo(text + ("" if tty else "\n"))
            stop.wait(WATCH_INTERVAL)
    finally:
        signal.signal(signal.SIGINT, previous)


@click.command()
@click.argument("name", shell_complete=_complete_api)
@env_option
@click.option("-f", "--follow", is_flag=True, help="keep printing new lines (Ctrl-C stops)")
@click.option("--pod", metavar="POD", help="only this replica's lines (cluster environments)")
@click.option(
    "--pretty/--raw",
    default=None,
    help="render JSON lines readably (default: on a terminal) or print them as written",
)
def logs(
    name: str, env_name: str | None, follow: bool, pod: str | None, pretty: bool | None
) -> None:
    """Print an API's log.

    The runtime writes JSON lines; on a terminal they are shown readably (--pretty), in a pipe
    as they are (--raw). On a cluster each line starts with its pod. With -f the command keeps
    printing (new pods of a rollout included) until Ctrl-C or the API's deletion.
    """
    env = config.open_environment(env_name)
    readable = sys.stdout.isatty() if pretty is None else pretty
    try:
        for line in env.logs(name, follow, pod):
            prefix = f"{line.source} " if line.source else ""
            for part in format.log_lines(line.text) if readable else [line.text]:
                click.echo(prefix + part)
    except KeyboardInterrupt:
        return


@click.command()
@click.argument("name", shell_complete=_complete_api)
@click.argument("file", required=False, type=click.Path(allow_dash=True))
@click.option("-d", "--data", metavar="JSON", help="the JSON payload itself, instead of FILE")
@click.option("-q", "--query", multiple=True, metavar="KEY=VALUE", help="a query parameter")
@click.option("-H", "--header", multiple=True, metavar="'NAME: VALUE'", help="a request header")
@env_option
def predict(
    name: str,
    file: str | None,
    data: str | None,
    query: tuple[str, ...],
    header: tuple[str, ...],
    env_name: str | None,
) -> None:
    """Send a payload to an API and print its answer.

    The payload is FILE ('-' for stdin; JSON unless it ends in .txt or is not JSON) or -d JSON.
    -q and -H may be repeated; a -H Content-Type wins over the guessed one. A streamed answer is
    printed as it arrives: each event's data (with -H 'Accept: text/event-stream') or the raw
    chunks. An answer with an error status is printed as an error (exit code 1).
    """
    body, content_type = _payload(file, data)
    request = environment.Request(body, content_type, _queries(query), _headers(header))
    reply = config.open_environment(env_name).predict(name, request)
    if reply.stream is not None and reply.status_code < 400:
        _print_stream(reply)
        return
    if reply.stream is not None:  # an error answered as a stream: shown whole, as one
        reply = dataclasses.replace(reply, body=b"".join(reply.stream), stream=None)
    shown = _show(reply)
    if reply.status_code >= 400:
        raise errors.CortexError(f"api '{name}' answered {reply.status_code}: {shown}")
    click.echo(shown)


def _queries(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise errors.CortexError(f"-q {item!r} must be KEY=VALUE, e.g. -q model=sentiment")
        pairs.append((key, value))
    return tuple(pairs)


def _headers(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in items:
        name, colon, value = item.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise errors.CortexError(
                f"-H {item!r} must be 'NAME: VALUE', e.g. -H 'Accept: text/event-stream'"
            )
        pairs.append((name, value.strip()))
    return tuple(pairs)


def _print_stream(reply: environment.Reply) -> None:
    """Print a streamed answer as it arrives; Ctrl-C stops reading it."""
    assert reply.stream is not None  # only called for streams
    out = sys.stdout.buffer
    events = sse.EventData() if reply.content_type.startswith("text/event-stream") else None
    ends_line = True
    try:
        for chunk in reply.stream:
            if events is not None:
                for data in events.feed(chunk):
                    out.write(data.encode() + b"\n")
            elif chunk:
                out.write(chunk)
                ends_line = chunk.endswith(b"\n")
            out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        reply.stream.close()
    if not ends_line and sys.stdout.isatty():  # leave the shell's prompt on its own line
        out.write(b"\n")
        out.flush()


def _payload(file: str | None, data: str | None) -> tuple[bytes, str]:
    """The request body and its content type, from FILE or -d."""
    if file is not None and data is not None:
        raise errors.CortexError("give the payload once: either FILE or -d JSON, not both")
    if data is not None:
        try:
            json.loads(data)
        except ValueError as exc:
            raise errors.CortexError(f"-d is not valid JSON: {exc}") from None
        return data.encode(), "application/json"
    if file is None:
        raise errors.CortexError(
            "no payload: pass a file (cortex predict NAME payload.json) or JSON (-d '{...}')"
        )
    body = _read(file)
    if file.endswith(".txt"):
        return body, "text/plain; charset=utf-8"
    try:
        json.loads(body)
    except ValueError:
        if file.endswith(".json"):
            raise errors.CortexError(f"{file} is not valid JSON") from None
        return body, "application/octet-stream"
    return body, "application/json"


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except FileNotFoundError:
        raise errors.CortexError(f"{file}: file not found") from None
    except OSError as exc:
        raise errors.CortexError(f"{file}: cannot read it ({exc.strerror})") from None


def _show(reply: environment.Reply) -> str:
    """JSON pretty-printed, text as it is, binary as a note of its size."""
    if reply.content_type.startswith("application/json"):
        try:
            indent = 2 if reply.status_code < 400 else None
            return json.dumps(json.loads(reply.body), indent=indent, ensure_ascii=False)
        except ValueError:
            pass
    if reply.content_type.startswith(("text/", "application/json")):
        text = reply.body.decode("utf-8", errors="replace")
        return text if reply.status_code < 400 else text[:_SHOWN_BODY]
    return f"<{len(reply.body)} bytes of {reply.content_type}>"


@click.command()
@click.argument("name", shell_complete=_complete_api)
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@click.option("--wait/--no-wait", default=True, help="wait until its replicas are gone")
@env_option
def delete(name: str, yes: bool, wait: bool, env_name: str | None) -> None:
    """Stop an API and remove it.

    The API stops taking new requests, finishes the ones in flight, then exits. Locally its
    state and logs are removed and its port is free again; on a cluster its resource, children
    and code go.
    """
    env = config.open_environment(env_name)
    if name not in env.names():
        raise environment.not_deployed(name, env.name, env.names())
    if not yes and sys.stdin.isatty():
        click.confirm(f"delete api '{name}'?", abort=True)
    click.echo(f"deleting {name}")
    env.delete(name, wait)

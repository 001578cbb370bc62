"""The ``cortex`` command line: the command group, ``serve``, ``version``, ``completion``, and
the entry point that turns every user error into one ``error: ...`` line and exit code 1.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

import click
from click.shell_completion import get_completion_class

from cortex import contracts
from cortex.cli import apis, envs, reloader
from cortex.contracts import Flag
from cortex.errors import CortexError, SpecError
from cortex.spec import load_specs

PROG = "cortex"
DISTRIBUTION = "cortex-serving"


def _version_text() -> str:
    try:
        number = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        number = "unknown (not installed)"
    return f"cortex {number}"


def _print_version(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(_version_text())
        ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the version of cortex and exit.",
)
def cli() -> None:
    """Serve a plain Python predictor as an HTTP API, locally or on Kubernetes."""


@cli.command()
@click.argument("config", default="cortex.yaml", type=click.Path(dir_okay=False))
# The runtime's own flags: `cortex serve` is the runtime in the foreground.
@click.option(Flag.API, "api_name", help="the API to serve when the file defines several")
@click.option(
    Flag.PORT, type=int, default=contracts.DEFAULT_PORT, show_default=True, help="0: any free port"
)
@click.option(Flag.HOST, default="127.0.0.1", show_default=True)
@click.option("--reload", is_flag=True, help="reload when a project file changes")
def serve(config: str, api_name: str | None, port: int, host: str, reload: bool) -> None:
    """Serve one API in the foreground (Ctrl-C stops it).

    For development: the API of CONFIG (default: ./cortex.yaml) runs in this terminal, its log
    printed here. With --reload, saving a file of the project (the files `cortex deploy` packs)
    loads the new code with no downtime. `cortex deploy` runs APIs in the background instead.
    """
    apis_ = load_specs(Path(config))
    if api_name is None and len(apis_) > 1:
        names = ", ".join(api.name for api in apis_)
        raise CortexError(f"{config} defines several APIs ({names}); choose one with --api")
    args = contracts.RuntimeArgs(spec=config, api=api_name, host=host, port=port)
    command = contracts.runtime_command(args, python=sys.executable)
    if reload:
        sys.exit(reloader.run(command, Path(config).resolve().parent))
    os.execv(sys.executable, command)


@cli.command()
def version() -> None:
    """Print the version of cortex (also: cortex --version)."""
    click.echo(_version_text())


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash: add  eval "$(cortex completion bash)"  to ~/.bashrc
    zsh:  add  eval "$(cortex completion zsh)"   to ~/.zshrc
    """
    complete_var = f"_{PROG.upper()}_COMPLETE"
    script = get_completion_class(shell)
    if script is None:  # click knows both shells; this guards a future click
        raise CortexError(f"no completion for shell '{shell}'")
    click.echo(script(cli, {}, PROG, complete_var).source())


for command in (apis.deploy, apis.get, apis.logs, apis.predict, apis.delete, envs.env):
    cli.add_command(command)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 1."""
    try:
        cli(prog_name=PROG, standalone_mode=False)
    except SpecError as exc:
        # One line per problem, each its own "error:" line: every one of them needs a fix.
        for line in str(exc).splitlines():
            click.echo(f"error: {line}", err=True)
        sys.exit(1)
    except CortexError as exc:
        _fail(str(exc))
    except click.exceptions.Abort:
        _fail("aborted")
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _fail(f"{exc.format_message().rstrip('.')}{hint}")
    except click.ClickException as exc:
        _fail(exc.format_message())
    except BrokenPipeError:
        # The reader went away (`cortex logs x | head`): not an error worth a message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as exc:
        _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


if __name__ == "__main__":
    main()

"""The ``cortex`` command line: parses arguments, calls a layer, prints the result."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from cortex.errors import CortexError
from cortex.spec import load_specs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Serve a plain Python predictor as an HTTP API, locally or on Kubernetes."""


@cli.command()
@click.argument("config", default="cortex.yaml", type=click.Path(dir_okay=False))
@click.option("--api", "api_name", help="the API to serve when the file defines several")
@click.option("--port", type=int, default=8888, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def serve(config: str, api_name: str | None, port: int, host: str) -> None:
    """Serve one API of CONFIG in the foreground (for development; Ctrl-C stops it)."""
    apis = load_specs(Path(config))
    if api_name is None and len(apis) > 1:
        names = ", ".join(api.name for api in apis)
        raise CortexError(f"{config} defines several APIs ({names}); choose one with --api")
    args = [sys.executable, "-m", "cortex.runtime", "--spec", config, "--port", str(port)]
    args += ["--host", host]
    if api_name:
        args += ["--api", api_name]
    os.execv(sys.executable, args)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 1."""
    try:
        cli(standalone_mode=False)
    except CortexError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)

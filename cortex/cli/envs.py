"""``cortex env list|default|configure|delete``: the environments APIs can be deployed to."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cortex import errors
from cortex.cli import config, format

__all__ = ["env"]


@click.group()
def env() -> None:
    """Manage environments (where APIs run).

    `local` (processes on this machine) is built in; Kubernetes clusters are added with
    `cortex env configure NAME --kube-context CONTEXT`.
    """


@env.command("list")
@click.option("-o", "--output", type=click.Choice(["pretty", "json"]), default="pretty")
def list_envs(output: str) -> None:
    """List the environments; the default one is marked."""
    conf = config.CLIConfig(config.cortex_home())
    envs = sorted(conf.environments.values(), key=lambda e: (e.name != config.LOCAL, e.name))
    if output == "json":
        rows = [{**vars(e), "default": e.name == conf.default} for e in envs]
        click.echo(json.dumps(rows, indent=2))
        return
    headers = ("env", "kind", "default", "context", "namespace", "where")
    rows_text = [
        [
            e.name,
            e.provider,
            "*" if e.name == conf.default else "",
            e.kube_context or "-",
            (e.namespace or "default") if e.provider != config.LOCAL else "-",
            e.describe(),
        ]
        for e in envs
    ]
    click.echo(format.table(headers, rows_text))


@env.command("default")
@click.argument("name", required=False)
def default_env(name: str | None) -> None:
    """Show the default environment, or make NAME the default."""
    conf = config.CLIConfig(config.cortex_home())
    if name is None:
        click.echo(conf.default)
        return
    conf.default = conf.get(name).name
    conf.save()
    click.echo(f"set the default environment to {name}")


@env.command("configure")
@click.argument("name")
@click.option("--kube-context", required=True, help="the kubeconfig context of the cluster")
@click.option(
    "--namespace", help="the namespace the APIs go to (default: the context's, else default)"
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    help="the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, as kubectl)",
)
def configure(name: str, kube_context: str, namespace: str | None, kubeconfig: str | None) -> None:
    """Add or change the cluster environment NAME (a context of your kubeconfig)."""
    if name == config.LOCAL:
        raise errors.CortexError("environment 'local' is built in and needs no configuration")
    if kubeconfig is not None:
        kubeconfig = str(Path(kubeconfig).expanduser().resolve())
    from cortex.cli import kube  # the kubernetes client is slow to import: only when needed

    context_namespace = kube.check_context(kubeconfig, kube_context)  # a typo fails now
    namespace = namespace or context_namespace
    conf = config.CLIConfig(config.cortex_home())
    conf.environments[name] = config.EnvConfig(
        name, config.KUBERNETES, kube_context, namespace, kubeconfig
    )
    conf.save()
    click.echo(f"configured environment {name} (context {kube_context}, namespace {namespace})")


@env.command("delete")
@click.argument("name")
def delete_env(name: str) -> None:
    """Forget the environment NAME (its APIs keep running)."""
    if name == config.LOCAL:
        raise errors.CortexError("environment 'local' is built in and cannot be deleted")
    conf = config.CLIConfig(config.cortex_home())
    conf.get(name)
    del conf.environments[name]
    if conf.default == name:
        conf.default = config.LOCAL
    conf.save()
    click.echo(f"deleted environment {name}")

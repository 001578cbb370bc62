"""The CLI's own settings: where its state lives and which environments exist.

State lives in ``~/.cortex`` (or ``$CORTEX_HOME``). Environments are kept in ``cli.yaml`` there;
``local`` always exists and is the default until another one is chosen. A cluster environment
records its kube context, namespace and (optionally) kubeconfig file; without one the kubeconfig
is found as kubectl finds it (``$KUBECONFIG``, else ``~/.kube/config``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cortex import errors
from cortex.cli import environment, local, state

__all__ = ["CLIConfig", "EnvConfig", "cortex_home", "open_environment"]

HOME_VARIABLE = "CORTEX_HOME"
LOCAL = "local"
KUBERNETES = "kubernetes"


def cortex_home() -> Path:
    """``$CORTEX_HOME``, else ``~/.cortex``."""
    value = os.environ.get(HOME_VARIABLE)
    return Path(value).expanduser() if value else Path.home() / ".cortex"


@dataclass(frozen=True)
class EnvConfig:
    """One environment: ``local``, or a Kubernetes cluster reached through a kube context."""

    name: str
    provider: str = LOCAL
    kube_context: str | None = None
    namespace: str | None = None
    kubeconfig: str | None = None

    def describe(self) -> str:
        if self.provider == LOCAL:
            return "processes on this machine"
        where = f"context {self.kube_context}, namespace {self.namespace or 'default'}"
        return where + (f", kubeconfig {self.kubeconfig}" if self.kubeconfig else "")


def _env_config(item: dict[str, Any]) -> EnvConfig:
    def text(key: str) -> str | None:
        return None if item.get(key) is None else str(item[key])

    return EnvConfig(
        str(item["name"]),
        text("provider") or KUBERNETES,
        text("kube_context"),
        text("namespace"),
        text("kubeconfig"),
    )


class CLIConfig:
    """``cli.yaml``: the environments and the default one."""

    def __init__(self, home: Path) -> None:
        self.path = home / "cli.yaml"
        data = self._read()
        self.default: str = str(data.get("default_environment") or LOCAL)
        self.environments = {LOCAL: EnvConfig(LOCAL)}
        for item in data.get("environments") or []:
            if isinstance(item, dict) and item.get("name") and item["name"] != LOCAL:
                self.environments[str(item["name"])] = _env_config(item)
        if self.default not in self.environments:
            self.default = LOCAL

    def _read(self) -> dict[str, Any]:
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, yaml.YAMLError) as exc:
            raise errors.CortexError(
                f"{self.path}: cannot read the CLI settings ({exc}); fix or delete the file"
            ) from None
        return data if isinstance(data, dict) else {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stored = [
            {k: v for k, v in vars(env).items() if v is not None}
            for name, env in sorted(self.environments.items())
            if name != LOCAL
        ]
        text = yaml.safe_dump({"default_environment": self.default, "environments": stored})
        state.write_atomic(self.path, text)

    def get(self, name: str | None) -> EnvConfig:
        """The environment called ``name`` (the default when None)."""
        chosen = name or self.default
        if chosen not in self.environments:
            known = ", ".join(sorted(self.environments))
            raise errors.CortexError(
                f"environment '{chosen}' is not configured (configured: {known}); "
                f"add it with `cortex env configure {chosen} --kube-context CONTEXT`"
            )
        return self.environments[chosen]


def open_environment(name: str | None, home: Path | None = None) -> environment.Environment:
    """The backend of the environment ``name`` (default: the configured default)."""
    home = home or cortex_home()
    env = CLIConfig(home).get(name)
    if env.provider == LOCAL:
        return local.LocalEnvironment(env.name, state.LocalState(home / "local"))
    if env.provider != KUBERNETES or env.kube_context is None:
        raise errors.CortexError(
            f"environment '{env.name}' in {home / 'cli.yaml'} is not usable (provider "
            f"{env.provider!r}); configure it again with `cortex env configure {env.name} "
            "--kube-context CONTEXT`"
        )
    # Imported here: the kubernetes client takes longer to import than a local command runs.
    from cortex.cli import cluster, kube

    connection = kube.connect(env.kubeconfig, env.kube_context, env.namespace)
    return cluster.ClusterEnvironment(env.name, connection)

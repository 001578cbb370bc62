"""Which API a request is for, from the RealtimeAPIs the activator watches. Pure.

The route of an API that may scale to zero sends its requests to the activator unchanged
(:func:`cortex.k8s.route.claim`: the API's host, if it names one, and its endpoint as a path
prefix), so the activator matches them the same way: the longest endpoint that prefixes the
path element by element, among the APIs of that host or of any host. Only APIs with
``min_replicas: 0`` are kept; an invalid spec is skipped (the operator reports it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cortex import errors
from cortex.k8s import route
from cortex.spec import RealtimeAPI, parse_api_spec

__all__ = ["Key", "Target", "match", "target_of"]

Key = tuple[str, str]  # namespace, name


@dataclass(frozen=True)
class Target:
    """An API that may scale to zero, as the activator needs it."""

    namespace: str
    api: RealtimeAPI
    replicas: int  # the resource's spec.replicas (None in the resource: init_replicas)

    @property
    def key(self) -> Key:
        return self.namespace, self.api.name

    @property
    def host(self) -> str:
        return route.claim(self.api)[0]

    @property
    def prefix(self) -> str:
        return route.claim(self.api)[1]


def target_of(resource: Mapping[str, Any]) -> Target | None:
    """The target of a RealtimeAPI resource, or None if it is invalid or never at zero."""
    meta = resource.get("metadata") or {}
    spec = dict(resource.get("spec") or {})
    replicas = spec.pop("replicas", None)
    try:
        api = parse_api_spec(str(meta.get("name", "")), spec)
    except errors.SpecError:
        return None
    if not api.scales_to_zero:
        return None
    return Target(
        meta.get("namespace", ""), api, api.init_replicas if replicas is None else replicas
    )


def _prefixes(path: str, prefix: str) -> bool:
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


def match(targets: Iterable[Target], host: str, path: str) -> Target | None:
    """The target whose endpoint is the longest prefix of ``path`` for ``host``."""
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    best: Target | None = None
    for target in targets:
        if target.host not in ("", host) or not _prefixes(path, target.prefix):
            continue
        rank = (len(target.prefix), target.host != "")
        if best is None or rank > (len(best.prefix), best.host != ""):
            best = target
    return best

"""What the watches may not have said, asked of the API server with lists.

kopf tells the operator of every change its watches see. When a watch expires (410 Gone: the
API server no longer has the resourceVersion it watched from), kopf lists the kind again and
tells of the objects it lists, as if they were new, but says nothing of those deleted while it
was not watching: an API deleted then would stay in the cache (kept forever, its children
re-created for an owner that is gone), a child deleted then would never be put back.

- :func:`snapshot` lists the APIs, their labelled children and the pods of a scope: the cache
  keeps what the lists show and drops what they lack (unless a watch told of it after the
  list). The first pass in a namespace takes one (what a restart needs to know), and so does
  the next one after kopf relists or the periodic resync.
- :class:`Owner` asks once per pass whether its API is still there, before a child is created
  again: a child of a deleted owner is collected at once, its deletion wakes the API, and a
  pass that created it again would loop.
"""

from __future__ import annotations

from collections.abc import Callable

from cortex import contracts
from cortex.k8s import CHILD_KINDS, LABEL_API_NAME, POD
from cortex.operator import kube
from cortex.operator.cache import Cache, Key

__all__ = ["Owner", "OwnerGoneError", "exists", "snapshot"]


async def snapshot(client: kube.Kube, cache: Cache, scope: str | None) -> set[Key]:
    """List the APIs of ``scope`` (a namespace; None: all), then every kind we may ever have
    rendered (what settings no longer render is removed from there) and the pods, into the
    cache; returns the APIs that something was dropped for (or that were dropped)."""
    apis = await client.list(contracts.API_VERSION, contracts.KIND, scope)
    dropped = cache.drop_apis(scope, apis.items, apis.version)
    for child in (*CHILD_KINDS, POD):
        try:
            listing = await client.list(child.api_version, child.kind, scope, LABEL_API_NAME)
        except kube.NotFoundError:  # a kind the cluster does not serve has nothing of ours
            continue
        dropped |= cache.replace(child.kind, scope, listing.items, listing.version)
    return dropped


async def exists(client: kube.Kube, key: Key, uid: str) -> bool:
    """Whether the RealtimeAPI ``key`` with this uid is still there (a list of the one name:
    the operator may list APIs, not get them)."""
    namespace, name = key
    listing = await client.list(contracts.API_VERSION, contracts.KIND, namespace, name=name)
    return any(item.get("metadata", {}).get("uid") == uid for item in listing.items)


class OwnerGoneError(Exception):
    """The API of a pass is not there any more (its deletion was not seen)."""


class Owner:
    """Whether the API of a pass still exists, asked at most once per pass."""

    def __init__(self, client: Callable[[], kube.Kube], key: Key, uid: str) -> None:
        self._client, self._key, self._uid = client, key, uid
        self._alive: bool | None = None

    async def check(self) -> None:
        """Raise :class:`OwnerGoneError` if the API is gone."""
        if self._alive is None:
            self._alive = await exists(self._client(), self._key, self._uid)
        if not self._alive:
            raise OwnerGoneError(f"{self._key[0]}/{self._key[1]}")

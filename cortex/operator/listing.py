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
- :func:`exists` asks whether one API is still there, before anything is created for it.
"""

from __future__ import annotations

from cortex import contracts
from cortex.k8s import CHILD_KINDS, LABEL_API_NAME, POD
from cortex.operator import kube
from cortex.operator.cache import Cache, Key

__all__ = ["exists", "snapshot"]


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

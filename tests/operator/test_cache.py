"""The operator's cache after a list: it keeps what the list shows, drops what it lacks, and
trusts a watch event newer than the list (kopf's relists never tell of deletions)."""

from __future__ import annotations

from typing import Any

from cortex.operator.cache import Cache


def child(name: str, version: int, kind: str = "Deployment", uid: str = "") -> dict[str, Any]:
    meta = {
        "name": f"api-{name}",
        "namespace": "default",
        "uid": uid or f"uid-{name}",
        "resourceVersion": str(version),
        "labels": {"cortex.dev/api-name": name},
    }
    body: dict[str, Any] = {"metadata": meta}
    if kind == "Pod":
        meta["name"] = f"api-{name}-pod"
        body["status"] = {"phase": "Running"}
    return body


def api(name: str, version: int, uid: str = "") -> dict[str, Any]:
    meta = {
        "name": name,
        "namespace": "default",
        "uid": uid or f"uid-{name}",
        "resourceVersion": str(version),
        "generation": 1,
    }
    return {"metadata": meta, "spec": {"predictor": {"type": "python", "path": "predictor.py"}}}


def test_a_list_drops_what_it_lacks_unless_a_newer_event_told_of_it() -> None:
    cache = Cache()
    for name, version in (("kept", 3), ("deleted", 4), ("newer", 12)):
        cache.observe_child("Deployment", "ADDED", child(name, version))

    dropped = cache.replace("Deployment", "default", [child("kept", 3)], version=10)

    assert dropped == {("default", "deleted")}
    assert set(cache.children["Deployment"]) == {("default", "kept"), ("default", "newer")}


def test_a_list_of_another_namespace_drops_nothing_here() -> None:
    cache = Cache()
    cache.observe_child("Deployment", "ADDED", child("here", 3))

    assert cache.replace("Deployment", "elsewhere", [], version=10) == set()
    assert cache.replace("Deployment", None, [], version=10) == {("default", "here")}


def test_pods_a_list_lacks_are_dropped() -> None:
    cache = Cache()
    cache.observe_child("Pod", "ADDED", child("gone", 3, kind="Pod"))

    assert cache.replace("Pod", "default", [], version=10) == {("default", "gone")}
    assert cache.pod_facts(("default", "gone")) == []


def test_a_list_from_before_a_deletion_does_not_bring_it_back() -> None:
    cache = Cache()
    cache.observe_child("Deployment", "ADDED", child("racing", 3))
    cache.observe_child("Deployment", "DELETED", child("racing", 9))

    cache.replace("Deployment", "default", [child("racing", 3)], version=8)
    assert cache.child("Deployment", ("default", "racing")) is None

    cache.replace("Deployment", "default", [child("racing", 11, uid="again")], version=12)
    assert cache.child("Deployment", ("default", "racing")) is not None, "created again since"
    assert cache.deleted == {}


def test_apis_a_list_lacks_or_shows_with_another_uid_are_dropped() -> None:
    cache = Cache()
    for name, version in (("kept", 3), ("deleted", 4), ("replaced", 5), ("newer", 12)):
        cache.observe_api("ADDED", api(name, version))

    dropped = cache.drop_apis("default", [api("kept", 3), api("replaced", 9, uid="new")], 10)

    assert dropped == {("default", "deleted"), ("default", "replaced")}
    assert set(cache.apis) == {("default", "kept"), ("default", "newer")}

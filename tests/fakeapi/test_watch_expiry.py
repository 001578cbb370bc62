"""Watches expire as on a real server: a 410 ``Expired`` ERROR event for a resourceVersion the
server no longer has (compacted, or out of the watch window); ``timeoutSeconds`` ends them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakeapi import FakeCluster

pytestmark = pytest.mark.timeout(60)

CMS = "/api/v1/namespaces/default/configmaps"


def watch(cluster: FakeCluster, since: str, timeout: int = 1) -> list[dict[str, Any]]:
    """The events of a watch from ``since`` until the server ends it."""
    params = {"watch": "true", "resourceVersion": since, "timeoutSeconds": str(timeout)}
    answer = httpx.get(cluster.url + CMS, params=params, timeout=10)
    assert answer.status_code == 200
    return [json.loads(line) for line in answer.text.splitlines()]


def config_map(cluster: FakeCluster, name: str) -> str:
    return cluster.create("v1/configmaps", {"metadata": {"name": name}})["metadata"][
        "resourceVersion"
    ]


def test_a_watch_from_before_a_compaction_gets_410_expired(cluster: FakeCluster) -> None:
    first = config_map(cluster, "a")
    now = config_map(cluster, "b")
    cluster.compact()

    assert watch(cluster, first, timeout=30) == [  # at once: the server ends the stream
        {
            "type": "ERROR",
            "object": {
                "apiVersion": "v1",
                "kind": "Status",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {first} ({now})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]
    config_map(cluster, "c")
    events = watch(cluster, now)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "c")]


def test_only_the_last_events_of_the_window_can_be_resumed_from(cluster: FakeCluster) -> None:
    cluster.call(lambda: setattr(cluster.store, "window", 3))
    versions = [config_map(cluster, name) for name in "abcde"]

    [expired] = watch(cluster, versions[0])
    assert (
        expired["object"]["message"] == f"too old resource version: {versions[0]} ({versions[1]})"
    )
    events = watch(cluster, versions[1])
    assert [e["object"]["metadata"]["name"] for e in events] == ["c", "d", "e"]


def test_a_running_watch_keeps_its_events_across_a_compaction(cluster: FakeCluster) -> None:
    since = config_map(cluster, "before")
    params = {"watch": "true", "resourceVersion": since, "timeoutSeconds": "1"}
    with httpx.stream("GET", cluster.url + CMS, params=params, timeout=10) as stream:
        config_map(cluster, "a")
        cluster.compact()
        config_map(cluster, "b")
        lines = [json.loads(line) for line in stream.iter_lines() if line]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
    ]

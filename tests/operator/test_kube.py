"""The API client: create-or-patch semantics and error classes, against the fake server."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest

from cortex import errors
from cortex.operator import kube
from tests.fakeapi import FakeCluster

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

OWNER = {  # the uid is the owner's that the cluster fixture creates
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "name": "iris",
    "uid": "",
    "controller": True,
    "blockOwnerDeletion": True,
}


def deployment(**spec: Any) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "iris"}},
        "spec": {"containers": [{"name": "api", "image": "img:1"}]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "api-iris",
            "namespace": "default",
            "labels": {"app": "iris"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "iris"}},
            "template": template,
            **spec,
        },
    }


@pytest.fixture
async def client(cluster: FakeCluster) -> AsyncIterator[kube.Kube]:
    api = kube.Kube(kopf.ConnectionInfo(server=cluster.url))
    yield api
    await api.close()


@pytest.fixture
def cluster(tmp_path: Any) -> Any:
    with FakeCluster(tmp_path) as fake:
        # A real owner: the garbage collector deletes children whose owners are all gone.
        owner = fake.create("v1/configmaps", {"metadata": {"name": "iris"}}, "default")
        OWNER.update(apiVersion="v1", kind="ConfigMap", uid=owner["metadata"]["uid"])
        yield fake


async def test_apply_creates_then_patches_in_place_then_writes_nothing(
    client: kube.Kube, cluster: FakeCluster
) -> None:
    manifest = deployment()
    assert await client.apply(manifest) == "created"
    cluster.patch("apps/v1/deployments", "api-iris", {"spec": {"replicas": 5}})  # the HPA
    uid = cluster.get("apps/v1/deployments", "api-iris")["metadata"]["uid"]

    changed = copy.deepcopy(manifest)
    changed["metadata"]["labels"] = {"app": "iris", "new": "yes"}
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    assert await client.apply(changed) == "patched"
    assert await client.apply(changed) == "unchanged"

    live = cluster.get("apps/v1/deployments", "api-iris")
    assert live["metadata"]["uid"] == uid
    assert live["spec"]["replicas"] == 5  # never sent again after creation
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "img:2"
    assert live["metadata"]["labels"]["new"] == "yes"
    assert [m for m, p, _ in cluster.served() if p.endswith("/api-iris")] == ["GET", "PATCH", "GET"]


async def test_apply_removes_what_the_previous_manifest_set(
    client: kube.Kube, cluster: FakeCluster
) -> None:
    await client.apply(deployment(minReadySeconds=5))
    cluster.patch("apps/v1/deployments", "api-iris", {"metadata": {"labels": {"mine": "x"}}})
    await client.apply(deployment())
    live = cluster.get("apps/v1/deployments", "api-iris")
    assert "minReadySeconds" not in live["spec"]
    assert live["metadata"]["labels"]["mine"] == "x"  # not ours: left alone


def test_three_way_patch_replaces_lists_and_deletes_dropped_keys() -> None:
    last = {"a": 1, "m": {"x": 1, "y": 2}, "l": [1]}
    desired = {"m": {"x": 1}, "l": [1, 2], "n": 3}
    live = {"a": 1, "m": {"x": 1, "y": 2, "z": 0}, "l": [1], "server": "kept"}
    assert kube.three_way_patch(last, desired, live) == {
        "a": None,
        "m": {"y": None},
        "l": [1, 2],
        "n": 3,
    }


async def test_apply_refuses_an_object_it_does_not_own(
    client: kube.Kube, cluster: FakeCluster
) -> None:
    foreign = deployment()
    foreign["metadata"]["ownerReferences"] = []
    cluster.create("apps/v1/deployments", foreign)
    with pytest.raises(kube.ForeignObjectError, match="not managed by cortex"):
        await client.apply(deployment())


async def test_server_errors_are_temporary_and_rejections_permanent(
    client: kube.Kube, cluster: FakeCluster
) -> None:
    path = "post /apis/apps/v1/namespaces/default/deployments"
    cluster.react(lambda fake: fake[path][:1] << 503)
    with pytest.raises(errors.TemporaryError, match="503"):
        await client.apply(deployment())
    with pytest.raises(errors.PermanentError, match=r"422|invalid"):
        await client.apply({**deployment(), "metadata": {"namespace": "default", "name": ""}})
    unreachable = kube.Kube(kopf.ConnectionInfo(server="http://127.0.0.1:9"))
    with pytest.raises(errors.TemporaryError, match="cannot reach"):
        await unreachable.apply(deployment())
    await unreachable.close()


async def test_patch_status_reports_a_missing_resource(client: kube.Kube) -> None:
    done = await client.patch_status("cortex.dev/v1alpha1", "RealtimeAPI", "default", "nope", {})
    assert done is False

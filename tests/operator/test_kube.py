"""The API client: server-side apply and error classes, against the fake server."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest

from cortex import errors
from cortex.operator import kube
from tests.fakeapi import FakeCluster, merging

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


async def test_apply_creates_then_updates_in_place_and_owns_what_it_sends(
    client: kube.Kube, cluster: FakeCluster
) -> None:
    manifest = deployment()
    created = await client.apply(manifest)
    uid = created["metadata"]["uid"]

    changed = copy.deepcopy(manifest)
    changed["metadata"]["labels"] = {"app": "iris", "new": "yes"}
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    await client.apply(changed)
    version = cluster.get("apps/v1/deployments", "api-iris")["metadata"]["resourceVersion"]
    await client.apply(changed)  # unchanged: the server commits nothing

    live = cluster.get("apps/v1/deployments", "api-iris")
    assert live["metadata"]["uid"] == uid
    assert live["metadata"]["resourceVersion"] == version
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "img:2"
    assert live["metadata"]["labels"]["new"] == "yes"
    annotations = live["metadata"].get("annotations", {})
    assert not [k for k in annotations if "last-applied" in k]  # no copy of the manifest
    managers = {(f["manager"], f["operation"]) for f in live["metadata"]["managedFields"]}
    assert managers == {("cortex-operator", "Apply")}


async def test_apply_takes_back_a_field_someone_changed_and_drops_what_it_stops_sending(
    client: kube.Kube, cluster: FakeCluster
) -> None:
    await client.apply(deployment(minReadySeconds=5))
    hand_edit = {
        "metadata": {"labels": {"mine": "x"}},
        "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "evil:1"}]}}},
    }
    cluster.call(
        lambda: cluster.store.update(
            cluster.store.kind("apps/v1/deployments"),
            "default",
            "api-iris",
            lambda obj: merging.strategic_merge(obj, hand_edit),
            manager="kubectl-edit",
        )
    )

    await client.apply(deployment())

    live = cluster.get("apps/v1/deployments", "api-iris")
    assert "minReadySeconds" not in live["spec"]
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "img:1"
    assert live["metadata"]["labels"]["mine"] == "x"  # not ours: left alone


async def test_get_answers_none_for_a_missing_object(client: kube.Kube) -> None:
    assert await client.get(deployment()) is None


async def test_errors_by_what_retrying_can_do(client: kube.Kube, cluster: FakeCluster) -> None:
    path = "patch /apis/apps/v1/namespaces/default/deployments/api-iris"
    cluster.react(lambda fake: fake[path][:1] << 503)
    with pytest.raises(errors.TemporaryError, match="503"):
        await client.apply(deployment())
    cluster.deny("patch", "deployments.apps")
    with pytest.raises(kube.RejectedError, match="forbidden") as refused:
        await client.apply(deployment())
    assert (refused.value.code, refused.value.reason) == (403, "Forbidden")
    cluster.allow_all()
    other = deployment()
    other["metadata"]["name"] = "api-other"
    cluster.react(lambda fake: fake[path.replace("api-iris", "api-other")][:1] << 422)
    with pytest.raises(kube.RejectedError) as invalid:
        await client.apply(other)
    assert invalid.value.code == 422
    with pytest.raises(kube.NotFoundError):  # a kind the server does not serve (yet)
        await client.apply({**deployment(), "apiVersion": "apps/v2"})
    unreachable = kube.Kube(kopf.ConnectionInfo(server="http://127.0.0.1:9"))
    with pytest.raises(errors.TemporaryError, match="cannot reach"):
        await unreachable.apply(deployment())
    await unreachable.close()


async def test_patch_status_reports_a_missing_resource(client: kube.Kube) -> None:
    done = await client.patch_status("cortex.dev/v1alpha1", "RealtimeAPI", "default", "nope", {})
    assert done is False


async def test_delete_removes_that_object_only(client: kube.Kube, cluster: FakeCluster) -> None:
    old = await client.apply(deployment())
    cluster.delete("apps/v1/deployments", "api-iris")
    await client.apply(deployment())  # a new object of the same name

    await client.delete(old, "apps/v1", "Deployment")  # the old uid: a 409, nothing deleted
    assert cluster.get("apps/v1/deployments", "api-iris") is not None
    await client.delete(cluster.get("apps/v1/deployments", "api-iris"), "apps/v1", "Deployment")
    assert cluster.get("apps/v1/deployments", "api-iris") is None
    await client.delete(old, "apps/v1", "Deployment")  # gone: fine


async def test_a_retry_after_holds_every_request_that_long(
    client: kube.Kube, cluster: FakeCluster
) -> None:
    cluster.inject("patch", "deployments.apps", code=429, retry_after=1, times=1)

    with pytest.raises(kube.RetryAfterError, match="retry after 1 s") as throttled:
        await client.apply(deployment())
    assert kube.retry_after(throttled.value) == 1.0
    assert await client.get(deployment()) is None  # another request waits as well

    [throttle, read] = [r for r in cluster.requests() if r.resource == "deployments"]
    assert throttle.code == 429
    assert read.at - throttle.at >= 0.95, "the server said: not before a second"
    assert kube.retry_after(errors.TemporaryError("no word on when")) == 0.0


async def test_priority_and_fairness_text_answers_are_retried_after_their_delay(
    client: kube.Kube, cluster: FakeCluster
) -> None:
    cluster.inject("patch", "deployments.apps", code=429, plain=True, times=1)

    with pytest.raises(kube.RetryAfterError, match="Too many requests") as throttled:
        await client.apply(deployment())

    assert throttled.value.retry_after == 1.0

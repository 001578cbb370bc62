"""Injected faults answer as a kube-apiserver does: Status bodies, Retry-After, slow requests,
watches that drop and expire."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from tests.fakeapi import FakeCluster, wait_for
from tests.fakeapi.access import ADMIN
from tests.fakeapi.faults import Fault

pytestmark = pytest.mark.timeout(60)

CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def config_map(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


def codes(cluster: FakeCluster, verb: str, resource: str) -> list[int]:
    return [r.code for r in cluster.requests() if (r.verb, r.resource) == (verb, resource)]


def test_a_500_answers_the_next_requests_as_an_internal_error(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    fault = cluster.inject("create", "configmaps", code=500, times=2)

    answers = [http.post(CMS, json=config_map(f"cm-{i}")) for i in range(3)]

    assert [a.status_code for a in answers] == [500, 500, 201]
    assert answers[0].json() == {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": "Internal error occurred: etcdserver: leader changed",
        "reason": "InternalError",
        "details": {"causes": [{"message": "etcdserver: leader changed"}]},
        "code": 500,
    }
    assert "Retry-After" not in answers[0].headers
    assert fault.hits == 2
    assert codes(cluster, "create", "configmaps") == [500, 500, 201]
    assert cluster.get("v1/configmaps", "cm-0") is None, "a refused write changes nothing"


def test_a_conflict_names_the_object_as_the_server_does(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    cluster.inject("patch", "deployments.apps", code=409, name="api-x")

    answer = http.patch(
        f"{DEPLOYMENTS}/api-x",
        json={"metadata": {"labels": {"a": "b"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )

    assert answer.status_code == 409
    body = answer.json()
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on deployments.apps "api-x": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    assert body["details"] == {"name": "api-x", "group": "apps", "kind": "deployments"}


def test_a_429_says_when_to_retry_in_a_header_and_in_its_status(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    cluster.inject("list", "configmaps", code=429, retry_after=3, times=1)

    answer = http.get(CMS)

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "3"
    assert answer.json()["reason"] == "TooManyRequests"
    assert answer.json()["details"] == {"retryAfterSeconds": 3}
    assert http.get(CMS).status_code == 200


def test_priority_and_fairness_429_is_text_with_retry_after_1(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    cluster.inject(code=429, plain=True, times=1)

    answer = http.get(CMS)

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "1"
    assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.text == "Too many requests, please try again later.\n"


def test_a_fault_acts_only_on_its_verb_resource_name_and_user(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    cluster.create("v1/configmaps", config_map("hit"))
    cluster.create("v1/configmaps", config_map("missed"))
    fault = cluster.inject("get", "configmaps", code=503, name="hit", user=ADMIN.name)
    cluster.inject("get", "configmaps", code=500, name="missed", user="someone-else")

    assert http.get(f"{CMS}/hit").status_code == 503
    assert http.get(f"{CMS}/missed").status_code == 200, "another user's fault"
    assert http.get(CMS).status_code == 200, "a list is another verb"
    assert http.get("/api/v1/namespaces/default/services/hit").status_code == 404, "not a cm"
    assert http.get(f"{CMS}/hit").status_code == 503
    assert fault.hits == 2


def test_a_fault_for_a_while_ends_by_itself(cluster: FakeCluster, http: httpx.Client) -> None:
    cluster.inject("list", "configmaps", code=500, seconds=1)

    assert http.get(CMS).status_code == 500
    wait_for(lambda: http.get(CMS).status_code == 200, what="the fault to end")


def test_heal_ends_every_fault(cluster: FakeCluster, http: httpx.Client) -> None:
    cluster.inject(code=500)
    assert http.get(CMS).status_code == 500

    cluster.heal()

    assert http.get(CMS).status_code == 200


def test_a_slow_server_holds_each_request_before_serving_it(
    cluster: FakeCluster, http: httpx.Client
) -> None:
    cluster.inject("create", "configmaps", delay=0.5)

    started = time.monotonic()
    answer = http.post(CMS, json=config_map("slow"))

    assert answer.status_code == 201
    assert time.monotonic() - started >= 0.5
    assert http.get(f"{CMS}/slow").status_code == 200


def test_a_held_write_lands_after_its_client_has_left(cluster: FakeCluster) -> None:
    cluster.inject("create", "configmaps", delay=1.0)

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(cluster.url + CMS, json=config_map("orphan"), timeout=0.2)

    wait_for(lambda: cluster.get("v1/configmaps", "orphan"), what="the write to land")
    assert codes(cluster, "create", "configmaps") == [201]


def test_a_fault_needs_a_known_code_or_a_delay() -> None:
    with pytest.raises(ValueError, match="code 418"):
        Fault(code=418)
    with pytest.raises(ValueError, match="a code to answer or a delay"):
        Fault(verb="get")
    with pytest.raises(ValueError, match="plain"):
        Fault(code=500, plain=True)


# --- watches ---------------------------------------------------------------------------------


class Watch:
    """A watch read in a thread: its events, and how the stream ended."""

    def __init__(self, cluster: FakeCluster, path: str, since: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.ended: BaseException | str | None = None
        params = {"watch": "true", "resourceVersion": since, "timeoutSeconds": "30"}
        self._thread = threading.Thread(target=self._read, args=(cluster.url + path, params))
        self._thread.start()

    def _read(self, url: str, params: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", url, params=params, timeout=30) as stream:
                for line in stream.iter_lines():
                    if line:
                        self.events.append(json.loads(line))
            self.ended = "cleanly"
        except httpx.HTTPError as exc:
            self.ended = exc

    def join(self) -> None:
        self._thread.join(30)
        assert not self._thread.is_alive()


def test_disconnected_watches_drop_mid_stream(cluster: FakeCluster) -> None:
    since = cluster.create("v1/configmaps", config_map("a"))["metadata"]["resourceVersion"]
    configmaps = Watch(cluster, CMS, since)
    deployments = Watch(cluster, DEPLOYMENTS, since)
    wait_for(lambda: cluster.call(lambda: len(cluster.fake.watches)) == 2, what="two watches")
    cluster.create("v1/configmaps", config_map("b"))
    wait_for(lambda: configmaps.events, what="the first event")

    assert cluster.disconnect_watches("configmaps") == 1

    configmaps.join()
    assert isinstance(configmaps.ended, httpx.RemoteProtocolError), configmaps.ended
    assert [e["object"]["metadata"]["name"] for e in configmaps.events] == ["b"]
    assert deployments.ended is None, "the other watch goes on"
    assert cluster.disconnect_watches() == 1
    deployments.join()


def test_an_expired_watch_cannot_resume_where_it_was(cluster: FakeCluster) -> None:
    since = cluster.create("v1/configmaps", config_map("a"))["metadata"]["resourceVersion"]
    watch = Watch(cluster, CMS, since)
    cluster.create("v1/configmaps", config_map("b"))
    wait_for(lambda: watch.events, what="the first event")
    last = watch.events[-1]["object"]["metadata"]["resourceVersion"]
    cluster.create("v1/configmaps", config_map("missed"))

    assert cluster.expire_watches() == 1

    watch.join()
    resumed = Watch(cluster, CMS, last)
    resumed.join()
    [event] = resumed.events
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")

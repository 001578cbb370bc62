"""A real activator in front of an API at zero, on the fake API server, with real runtimes as
its replicas: requests are held, the API woken once, and every request served."""

from __future__ import annotations

import concurrent.futures
import socket
from pathlib import Path

import httpx
import pytest

from cortex.contracts import COLD_START_HEADER, Metric
from tests.activator.harness import (
    PATH,
    RAPIS,
    Activator,
    api_at_zero,
    backends,
    replicas,
    scale_writes,
    shared_port,
    until,
    unused_port,
)
from tests.fakeapi import FakeCluster

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
DEPLOYMENT = "api-echo"
DEPLOYMENTS = "apps/v1/deployments"
ADDRESS = "127.0.0.2"


def post(url: str, i: int) -> httpx.Response:
    return httpx.post(url + PATH, json={"i": i}, timeout=120)


def test_fifty_requests_at_zero_wake_it_once_none_forwarded_before_ready_then_all_served(
    tmp_path: Path,
) -> None:
    port, socks = shared_port([ADDRESS])
    with FakeCluster(tmp_path) as cluster:
        api_at_zero(cluster, port, target_replica_concurrency=50)
        with (
            Activator(cluster, tmp_path) as activator,
            concurrent.futures.ThreadPoolExecutor(50) as pool,
        ):
            sent = [pool.submit(post, activator.url, i) for i in range(50)]
            until(lambda: activator.metric(Metric.HELD) == 50, "50 requests held")
            until(lambda: replicas(cluster) == 1, "the API's scale write")
            with backends(tmp_path, socks) as [replica]:
                until(replica.ready, "the runtime to load")
                cluster.set_pods(DEPLOYMENT, "pending", ips=[ADDRESS])  # routable, not ready
                assert replica.requests_served() == 0
                assert not any(future.done() for future in sent)

                cluster.set_pods(DEPLOYMENT, "ready", ips=[ADDRESS])
                answers = [future.result() for future in sent]

                assert replica.requests_served() == 50
            assert activator.metric(Metric.HELD) == 0
            assert activator.metric(Metric.COLD_START + "_count") == 1
        writes = scale_writes(cluster)
    assert writes == [1]  # one effective write, though 50 requests waited
    assert [answer.status_code for answer in answers] == [200] * 50
    assert [answer.json()["payload"]["i"] for answer in answers] == list(range(50))
    assert all(float(answer.headers[COLD_START_HEADER]) > 0 for answer in answers)


def test_a_failing_scale_write_is_retried_while_requests_are_held(tmp_path: Path) -> None:
    port = unused_port()
    with FakeCluster(tmp_path) as cluster:
        api_at_zero(cluster, port)
        fault = cluster.inject("update", "realtimeapis.cortex.dev/scale", code=500, times=2)
        with (
            concurrent.futures.ThreadPoolExecutor(1) as pool,
            Activator(cluster, tmp_path) as activator,  # stopped first: its 503 frees the pool
        ):
            pool.submit(post, activator.url, 0)
            until(lambda: replicas(cluster) == 1, "the retried scale write")

            assert fault.hits == 2
            assert activator.metric(Metric.HELD) == 1


def test_a_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    port = unused_port()
    with FakeCluster(tmp_path) as cluster:
        api_at_zero(cluster, port, max_queue_length=2)
        with (
            concurrent.futures.ThreadPoolExecutor(2) as pool,
            Activator(cluster, tmp_path) as activator,
        ):
            for i in range(2):
                pool.submit(post, activator.url, i)
            until(lambda: activator.metric(Metric.HELD) == 2, "2 requests held")

            overflow = post(activator.url, 2)

    assert overflow.status_code == 503
    assert int(overflow.headers["Retry-After"]) > 0
    assert "held" in overflow.json()["error"]


def test_a_client_that_leaves_while_held_is_dropped_from_the_count(tmp_path: Path) -> None:
    port = unused_port()
    with FakeCluster(tmp_path) as cluster:
        api_at_zero(cluster, port)
        with Activator(cluster, tmp_path) as activator:
            request = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}"
            with socket.create_connection(("127.0.0.1", activator.port)) as client:
                client.sendall(request.encode())
                until(lambda: activator.metric(Metric.HELD) == 1, "the request held")

            until(lambda: activator.metric(Metric.HELD) == 0, "the held count back to 0")
            assert activator.metric(Metric.ACTIVATOR_IN_FLIGHT) == 0


def test_a_request_during_the_scale_down_is_held_wakes_the_api_and_is_served(
    tmp_path: Path,
) -> None:
    port, socks = shared_port([ADDRESS])
    with FakeCluster(tmp_path) as cluster, backends(tmp_path, socks) as [replica]:
        api_at_zero(cluster, port)
        cluster.patch(RAPIS, "echo", {"spec": {"replicas": 1}})
        cluster.patch(DEPLOYMENTS, DEPLOYMENT, {"spec": {"replicas": 1}})
        until(replica.ready, "the runtime to load")
        cluster.set_pods(DEPLOYMENT, "ready", ips=[ADDRESS])
        with (
            concurrent.futures.ThreadPoolExecutor(1) as pool,
            Activator(cluster, tmp_path) as activator,
        ):
            assert post(activator.url, 0).status_code == 200  # awake: straight through
            # what the operator's scale to zero writes, then a request before the wake
            cluster.patch(RAPIS, "echo", {"spec": {"replicas": 0}})
            cluster.patch(DEPLOYMENTS, DEPLOYMENT, {"spec": {"replicas": 0}})
            held = pool.submit(post, activator.url, 1)
            until(lambda: replicas(cluster) == 1, "the wake")
            cluster.set_pods(DEPLOYMENT, "ready", ips=[ADDRESS])
            answer = held.result()
        writes = scale_writes(cluster)

    assert answer.status_code == 200
    assert COLD_START_HEADER in answer.headers
    assert writes == [1, 0, 1]  # awake, the scale to zero, the wake

"""The operator's own metrics: ``python -m cortex.operator --metrics URL`` scraped over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cortex.operator.metrics import OperatorMetric, OperatorMetrics, Snapshot
from tests.fakeapi import FakeCluster, wait_for
from tests.operator.conftest import RAPI, resource, status_of, wait_children
from tests.operator.process import OperatorProcess, free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> tuple[str, Samples] | None:
    """(content type, samples by name and labels) of a scrape, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            kind, text = response.headers["Content-Type"], response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return kind, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.mark.slow
def test_the_metrics_endpoint_counts_passes_applies_and_errors_and_shows_each_api(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    log = tmp_path / "operator.log"
    with OperatorProcess(cluster.kubeconfig, log, "--metrics", url):
        cluster.create(RAPI, resource("iris"))
        cluster.create(RAPI, resource("broken", predictor={"path": "predictor.txt"}))
        wait_children(cluster, "iris")
        wait_for(lambda: status_of(cluster, "broken").get("status"), what="broken's status")

        def settled() -> Samples | None:
            scraped = scrape(url)
            done = scraped and value(scraped[1], OperatorMetric.QUEUE) == 0
            return scraped[1] if scraped and done else None

        samples = wait_for(settled, what="an empty work queue")
        kind, _ = scrape(url) or ("", {})
        word = status_of(cluster, "iris")["status"]

    assert kind.startswith("text/plain; version=")  # the Prometheus text format
    assert value(samples, OperatorMetric.APIS) == 2
    assert (value(samples, f"{OperatorMetric.PASSES}_total") or 0) >= 2
    assert value(samples, f"{OperatorMetric.APPLIES}_total", kind="Deployment") == 1
    assert value(samples, f"{OperatorMetric.APPLIES}_total", kind="Service") == 1
    assert value(samples, f"{OperatorMetric.ERRORS}_total", reason="InvalidSpec") == 1
    iris = {"namespace": "default", "api_name": "iris", "status": word}
    assert value(samples, OperatorMetric.API_READY, **iris) == (1 if word == "live" else 0)
    broken = {"namespace": "default", "api_name": "broken", "status": "error"}
    assert value(samples, OperatorMetric.API_READY, **broken) == 0


@pytest.mark.slow
def test_without_the_flag_nothing_listens(cluster: FakeCluster, tmp_path: Path) -> None:
    port = free_port()
    with OperatorProcess(cluster.kubeconfig, tmp_path / "operator.log"):
        assert scrape(f"http://127.0.0.1:{port}/metrics") is None


def test_a_metrics_url_that_is_not_http_host_port_exits_2_naming_the_flag() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cortex.operator", "--metrics", "0.0.0.0:8081"],
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "--metrics '0.0.0.0:8081' must look like http://0.0.0.0:8081/metrics" in done.stderr


def test_ready_is_1_only_for_a_live_api_and_an_api_without_status_is_not_ready() -> None:
    def condition(ready: str) -> list[dict[str, str]]:
        return [{"type": "Ready", "status": ready}]

    statuses = {
        ("ml", "live-one"): {"status": "live", "conditions": condition("True")},
        ("ml", "asleep"): {"status": "scaled to zero", "conditions": condition("False")},
        ("ml", "new"): None,
    }
    registry = OperatorMetrics(lambda: Snapshot(apis=3, queued=1, statuses=statuses)).registry

    def ready(name: str, word: str) -> float | None:
        labels = {"namespace": "ml", "api_name": name, "status": word}
        return registry.get_sample_value(OperatorMetric.API_READY, labels)

    assert ready("live-one", "live") == 1
    assert ready("asleep", "scaled to zero") == 0
    assert ready("new", "") == 0
    assert registry.get_sample_value(OperatorMetric.QUEUE) == 1

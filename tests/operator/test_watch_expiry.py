"""The operator survives its watches expiring (410 ``Expired``), as they do on a real cluster
once the API server has compacted the versions it watched from."""

from __future__ import annotations

import pytest

from tests.fakeapi import FakeCluster, wait_for
from tests.operator.conftest import (
    HPAS,
    OPERATOR_USER,
    RAPI,
    resource,
    running,
    wait_children,
    wait_status,
)

pytestmark = pytest.mark.timeout(60)


def test_the_operator_lists_again_after_a_compaction_and_keeps_reconciling(
    cluster: FakeCluster,
) -> None:
    with running(retry_delay=0.2, watch_timeout=1):
        cluster.create(RAPI, resource("iris"))
        wait_children(cluster, "iris")
        wait_status(cluster, "iris", "updating")
        # the newest version is no watched object's, so every watch resumes from an older one
        cluster.create("v1/configmaps", {"metadata": {"name": "unwatched"}})
        mark = len(cluster.requests())
        cluster.compact()

        def relisted() -> set[str]:
            return {
                r.resource
                for r in cluster.requests()[mark:]
                if (r.user, r.verb) == (OPERATOR_USER, "list")
            }

        # each watch ends after a second and resumes: 410 Expired, so kopf lists again
        wait_for(
            lambda: relisted() >= {"realtimeapis", "deployments", "pods"},
            what=f"the operator to list again (listed: {relisted()})",
        )
        cluster.patch(RAPI, "iris", {"spec": {"autoscaling": {"max_replicas": 7}}})
        wait_for(
            lambda: cluster.get(HPAS, "api-iris")["spec"]["maxReplicas"] == 7,
            what="the change after the relist handled",
        )

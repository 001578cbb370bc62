"""``python -m cortex.operator``: its options, and how our settings become kopf's."""

from __future__ import annotations

import pytest

from cortex.k8s import OperatorSettings
from cortex.operator import kopf_settings, run_options
from cortex.operator.__main__ import main
from cortex.operator.config import MAX_PRIORITY


def test_help_documents_the_log_formats_and_the_health_endpoint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])

    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--log-format {json,plain}" in text
    assert "one JSON object per line" in text
    assert "--liveness URL" in text
    assert "--priority N" in text


def test_an_unknown_log_format_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--log-format", "xml"])

    assert done.value.code == 2
    assert "invalid choice: 'xml'" in capsys.readouterr().err


def test_one_namespace_or_the_whole_cluster() -> None:
    assert run_options(OperatorSettings(namespace="ml")) == {
        "namespaces": ["ml"],
        "clusterwide": False,
        "standalone": True,
    }
    assert run_options(OperatorSettings())["clusterwide"] is True


def test_peering_is_mandatory_with_the_priority_given() -> None:
    options = run_options(OperatorSettings(namespace="ml", peering="cortex"), priority=7)

    assert options == {
        "namespaces": ["ml"],
        "clusterwide": False,
        "standalone": False,
        "peering_name": "cortex",
        "priority": 7,
    }


def test_each_peer_draws_its_own_priority_as_equal_ones_would_all_pause() -> None:
    settings = OperatorSettings(peering="cortex")
    priorities = {run_options(settings)["priority"] for _ in range(20)}

    assert len(priorities) > 1
    assert all(1 <= priority <= MAX_PRIORITY for priority in priorities)


def test_kopf_keeps_its_state_under_our_domain_and_posts_events() -> None:
    options = kopf_settings(OperatorSettings())
    assert options.persistence.finalizer.startswith("cortex.dev/")
    assert options.persistence.progress_storage.prefix == "cortex.dev"
    assert options.posting.enabled
    assert not options.scanning.disabled
    assert kopf_settings(OperatorSettings(namespace="ml")).scanning.disabled


def test_the_peering_lifetime_is_kopfs() -> None:
    assert kopf_settings(OperatorSettings()).peering.lifetime == 60
    assert kopf_settings(OperatorSettings(peering_lifetime=5)).peering.lifetime == 5

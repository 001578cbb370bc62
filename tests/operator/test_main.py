"""``python -m cortex.operator``: settings come from the environment; bad ones stop it early."""

from __future__ import annotations

import pytest

from cortex.k8s import OperatorSettings
from cortex.operator import kopf_settings, run_options
from cortex.operator.__main__ import main


def test_bad_settings_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CORTEX_OPERATOR_CUSTOM_METRICS", "maybe")
    assert main([]) == 2
    assert "CORTEX_OPERATOR_CUSTOM_METRICS" in capsys.readouterr().err


def test_one_namespace_or_the_whole_cluster() -> None:
    assert run_options(OperatorSettings(namespace="ml")) == {
        "namespaces": ["ml"],
        "clusterwide": False,
        "standalone": True,
    }
    assert run_options(OperatorSettings())["clusterwide"] is True


def test_kopf_keeps_its_state_under_our_domain_and_posts_events() -> None:
    options = kopf_settings(OperatorSettings())
    assert options.persistence.finalizer.startswith("cortex.dev/")
    assert options.persistence.progress_storage.prefix == "cortex.dev"
    assert options.posting.enabled
    assert not options.scanning.disabled
    assert kopf_settings(OperatorSettings(namespace="ml")).scanning.disabled

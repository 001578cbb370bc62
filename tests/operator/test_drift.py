"""What counts as drift between a live object and what the operator applies (pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cortex.operator.drift import covers, quantity_value

DESIRED: dict[str, Any] = {
    "metadata": {"labels": {"app": "a"}, "ownerReferences": [{"uid": "u1", "controller": True}]},
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "api",
                        "image": "me/api:1",
                        "env": [{"name": "A", "value": "1"}],
                        "resources": {"requests": {"cpu": "0.5", "memory": "1Gi"}},
                    }
                ],
                "tolerations": [{"key": "gpu", "operator": "Exists"}],
                "automountServiceAccountToken": False,
            }
        },
    },
}


def live(**changes: Any) -> dict[str, Any]:
    """What a server would keep: DESIRED with defaults and other managers' fields added."""
    container = {
        **DESIRED["spec"]["template"]["spec"]["containers"][0],
        "imagePullPolicy": "IfNotPresent",
        "terminationMessagePath": "/dev/termination-log",
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
        "env": [{"name": "INJECTED", "value": "x"}, {"name": "A", "value": "1"}],
    }
    container.update(changes.pop("container", {}))
    pod = {**DESIRED["spec"]["template"]["spec"], "containers": [container], "dnsPolicy": "X"}
    pod.update(changes.pop("pod", {}))
    meta = {
        "name": "api-a",
        "labels": {"app": "a", "extra": "y"},
        "annotations": {"deployment.kubernetes.io/revision": "3"},
        "ownerReferences": DESIRED["metadata"]["ownerReferences"],
    }
    return {
        "metadata": meta,
        "spec": {"replicas": changes.pop("replicas", 2), "template": {"spec": pod}},
        "status": {"readyReplicas": 1},
    }


def test_defaults_and_other_managers_fields_are_not_drift() -> None:
    assert covers(live(), DESIRED)


@pytest.mark.parametrize(
    "changes",
    [
        {"container": {"image": "me/api:hand-edited"}},
        {"container": {"env": [{"name": "A", "value": "2"}]}},
        {"container": {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}},
        {"pod": {"tolerations": []}},
        {"pod": {"automountServiceAccountToken": True}},
        {"replicas": 3},
    ],
)
def test_a_changed_field_we_own_is_drift(changes: dict[str, Any]) -> None:
    assert not covers(live(**changes), DESIRED)


def test_a_missing_object_or_field_is_drift() -> None:
    assert not covers(None, DESIRED)
    assert not covers({"metadata": {}}, {"metadata": {"labels": {"a": "b"}}})


def test_booleans_are_not_numbers() -> None:
    assert not covers(1, True)
    assert not covers(True, 1)
    assert covers(False, False)


@pytest.mark.parametrize(
    ("text", "value"),
    [("500m", Decimal("0.5")), ("1Gi", Decimal(2**30)), ("2", Decimal(2)), ("1e3", Decimal(1000))],
)
def test_quantities_compare_by_value(text: str, value: Decimal) -> None:
    assert quantity_value(text) == value


def test_strings_that_are_no_quantities_compare_as_text() -> None:
    assert quantity_value("me/api:1") is None
    assert not covers("IfNotPresent", "Always")

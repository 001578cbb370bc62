"""The Routed condition from an HTTPRoute's status, and who holds a claimed host and path. Pure."""

from __future__ import annotations

from typing import Any

from cortex.k8s import OperatorSettings
from cortex.operator.routing import Claims, routed

GATEWAY = OperatorSettings(routing="gateway", gateway=("gw", "public"))


def route(generation: int, observed: int, accepted: str = "True") -> dict[str, Any]:
    conditions = [
        {"type": "Accepted", "status": accepted, "reason": "Accepted", "message": "",
         "observedGeneration": observed},
        {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs", "message": "",
         "observedGeneration": observed},
    ]  # fmt: skip
    parent = {"parentRef": {"namespace": "gw", "name": "public"}, "conditions": conditions}
    return {
        "metadata": {"name": "api-iris", "namespace": "ml", "generation": generation},
        "status": {"parents": [parent]},
    }


def test_conditions_of_an_older_generation_are_pending() -> None:
    current = routed(GATEWAY, "iris", route(2, 2), None)
    stale = routed(GATEWAY, "iris", route(3, 2), None)

    assert current is not None and (current.status, current.reason) == ("True", "Accepted")
    assert stale is not None and (stale.status, stale.reason) == ("Unknown", "RoutePending")


def test_conditions_for_another_gateway_do_not_count() -> None:
    other = OperatorSettings(routing="gateway", gateway=("gw", "private"))

    condition = routed(other, "iris", route(1, 1), None)

    assert condition is not None and condition.reason == "RoutePending"
    assert "Gateway gw/private" in condition.message


def test_no_routing_no_condition() -> None:
    assert routed(OperatorSettings(), "iris", None, None) is None


def test_the_oldest_claimant_holds_a_claim_and_the_next_takes_over() -> None:
    claims = Claims()
    claim = ("", "/predict")

    assert claims.update(("ml", "young"), claim, "2026-01-02T00:00:00Z") == set()
    assert claims.update(("ml", "old"), claim, "2026-01-01T00:00:00Z") == {("ml", "young")}
    assert claims.holder(("ml", "young")) == ("ml", "old")
    assert claims.holder(("ml", "old")) is None
    assert claims.update(("ml", "old"), claim, "2026-01-01T00:00:00Z") == set()  # unchanged

    assert claims.update(("ml", "old"), None, "") == {("ml", "young")}
    assert claims.holder(("ml", "young")) is None

"""Admission rejections that tests inject, worded as the real admission plugins word them.

A rule refuses writes (``create``, ``update``, ``delete``) of one resource, as RBAC names it
(``pods``, ``deployments.apps``, ``realtimeapis.cortex.dev``), in one namespace or all, the way
one of these does on a cluster:

- ``quota``: the ResourceQuota plugin, 403 ``pods "x" is forbidden: exceeded quota: ...``;
- ``pod-security``: PodSecurity ``restricted``, 403 ``pods "x" is forbidden: violates
  PodSecurity "restricted:latest": ...``; only pods (it only warns about workloads), and without
  a ``message`` only pods that fail its checks (the message lists them);
- ``webhook``: a validating webhook that denies (as controller-runtime's ``admission.Denied``
  does): 403 ``admission webhook "<name>" denied the request: ...``.

The store applies the rules to every write of a main resource (not to its subresources), the
controllers' own writes included; listeners hear of every change of the rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakeapi.errors import ApiError

Obj = dict[str, Any]

KINDS = ("quota", "pod-security", "webhook")
VERBS = ("create", "update", "delete")
POLICY = "restricted:latest"


@dataclass(frozen=True)
class Rule:
    resource: str
    kind: str
    message: str | None = None
    webhook: str = "validate.policy.example.com"
    namespace: str | None = None
    verbs: tuple[str, ...] = ("create",)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"admission kind {self.kind!r} is not one of {KINDS}")
        if not set(self.verbs) <= set(VERBS):
            raise ValueError(f"admission verbs {self.verbs!r} are not among {VERBS}")
        if self.kind == "pod-security" and self.resource != "pods":
            raise ValueError("PodSecurity enforces on pods only; for workloads it warns")


class Admission:
    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.listeners: list[Callable[[], None]] = []

    def add(self, rule: Rule) -> None:
        self.rules.append(rule)
        self._changed()

    def clear(self) -> None:
        self.rules.clear()
        self._changed()

    def _changed(self) -> None:
        for listener in list(self.listeners):
            listener()

    def check(self, what: str, verb: str, obj: Obj, subresource: str | None) -> None:
        """Raise the first matching rule's rejection of ``verb`` on ``obj`` (``what``: its
        resource as RBAC names it)."""
        if subresource or not self.rules:
            return
        namespace = obj["metadata"].get("namespace")
        for rule in self.rules:
            if rule.resource != what or verb not in rule.verbs:
                continue
            if rule.namespace is not None and rule.namespace != namespace:
                continue
            error = _rejection(rule, what, obj)
            if error is not None:
                raise error


def _rejection(rule: Rule, what: str, obj: Obj) -> ApiError | None:
    if rule.kind == "webhook":
        message = rule.message or "the request is not allowed by the cluster's policy"
        text = f'admission webhook "{rule.webhook}" denied the request: {message}'
        return ApiError(403, "Forbidden", text)
    if rule.kind == "quota":
        counted = what if "." not in what else f"count/{what}"  # core kinds have own names
        usage = f"requested: {counted}=1, used: {counted}=10, limited: {counted}=10"
        why = f"exceeded quota: {rule.message or f'compute-resources, {usage}'}"
    else:
        failures = rule.message or restricted_failures(obj.get("spec") or {})
        if not failures:
            return None
        why = f'violates PodSecurity "{POLICY}": {failures}'
    return forbidden(what, obj["metadata"].get("name", ""), why)


def forbidden(what: str, name: str, why: str) -> ApiError:
    """``admission.NewForbidden``: the resource, the object's name and the plugin's reason."""
    resource, _, group = what.partition(".")
    details: Obj = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return ApiError(403, "Forbidden", f'{what} "{name}" is forbidden: {why}', details)


def restricted_failures(spec: Obj) -> str:
    """What PodSecurity's ``restricted`` checks find wrong with a pod spec, in its words."""
    pod = spec.get("securityContext") or {}
    containers = [
        c
        for key in ("initContainers", "containers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
    ]

    def context(container: Obj) -> Obj:
        return container.get("securityContext") or {}

    def names(bad: list[Obj]) -> str:
        quoted = ", ".join(f'"{c.get("name", "")}"' for c in bad)
        return f"container {quoted}" if len(bad) == 1 else f"containers {quoted}"

    failures = []
    bad = [c for c in containers if context(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        detail = f"{names(bad)} must set securityContext.allowPrivilegeEscalation=false"
        failures.append(f"allowPrivilegeEscalation != false ({detail})")
    bad = [
        c
        for c in containers
        if "ALL" not in ((context(c).get("capabilities") or {}).get("drop") or [])
    ]
    if bad:
        detail = f'{names(bad)} must set securityContext.capabilities.drop=["ALL"]'
        failures.append(f"unrestricted capabilities ({detail})")
    if pod.get("runAsNonRoot") is not True:
        bad = [c for c in containers if context(c).get("runAsNonRoot") is not True]
        if bad:
            detail = f"pod or {names(bad)} must set securityContext.runAsNonRoot=true"
            failures.append(f"runAsNonRoot != true ({detail})")
    allowed = ("RuntimeDefault", "Localhost")
    if (pod.get("seccompProfile") or {}).get("type") not in allowed:
        bad = [
            c
            for c in containers
            if (context(c).get("seccompProfile") or {}).get("type") not in allowed
        ]
        if bad:
            detail = (
                f"pod or {names(bad)} must set securityContext.seccompProfile.type to "
                '"RuntimeDefault" or "Localhost"'
            )
            failures.append(f"seccompProfile ({detail})")
    return ", ".join(failures)

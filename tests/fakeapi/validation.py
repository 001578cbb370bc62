"""Validation of built-in workloads as the API server does it (``pkg/apis/apps/validation``), with
its field paths and messages, the values printed the way Go prints them (``%#v``), and the
decoding errors (400) of values of the wrong type.

``admit`` is the store's step for built-in kinds: default (``defaults``), then validate; a
Deployment's or ReplicaSet's selector is immutable after creation. Pure.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakeapi import defaults, errors, quantity

Obj = dict[str, Any]
Cause = tuple[str, str]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_PERCENT_MESSAGE = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or "
    "'93%', regex used for validation is '[0-9]+%')"
)
_NONNEGATIVE = "must be greater than or equal to 0"
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_OVERCOMMITTABLE = ("cpu", "memory", "ephemeral-storage")
_INT_FIELDS = ("replicas", "minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds")
_DEFAULTS = {"Deployment": defaults.deployment, "ReplicaSet": defaults.replica_set}


def admit(kind: str, obj: Obj, old: Obj | None, subresource: str | None) -> Obj:
    """Default and validate a write of a built-in object (the other kinds pass unchanged)."""
    if subresource == "status" or kind not in (*_DEFAULTS, "Pod"):
        return obj
    _decode(kind, obj)
    try:
        if kind == "Pod":
            return defaults.pod(obj)
        _DEFAULTS[kind](obj)
    except ValueError:
        raise _undecodable(
            kind, f"quantities must match the regular expression '{quantity.PATTERN}'"
        ) from None
    causes = workload(obj, old)
    if causes:
        raise errors.invalid(kind, obj["metadata"].get("name", ""), causes, group="apps")
    return obj


def workload(obj: Obj, old: Obj | None) -> list[Cause]:
    """The causes of a 422 for a (defaulted) Deployment or ReplicaSet; ``old`` on updates."""
    spec = obj["spec"]
    causes: list[Cause] = []
    name = obj["metadata"].get("name", "")
    if old is None and name and not _DNS_SUBDOMAIN.match(name):
        causes.append(_invalid("metadata.name", _go(name), _SUBDOMAIN_MESSAGE))
    causes += _nonnegative(spec, "replicas")
    selector = spec.get("selector")
    valid_selector = True
    if selector is None:
        causes.append(("spec.selector", "Required value"))
    else:
        selector_causes = _selector(selector)
        valid_selector = not selector_causes
        causes += selector_causes
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            message = "empty selector is invalid for deployment"  # ReplicaSets say so too
            causes.append(_invalid("spec.selector", _go_selector(selector), message))
    if not valid_selector:
        causes.append(_invalid("spec.selector", _go_selector(selector), "invalid label selector"))
    else:
        causes += _template(spec.get("template") or {}, selector)
    if obj["kind"] == "Deployment":
        causes += _strategy(spec.get("strategy") or {})
    causes += _nonnegative(spec, "minReadySeconds")
    if obj["kind"] == "Deployment":
        causes += _nonnegative(spec, "revisionHistoryLimit")
        deadline = spec.get("progressDeadlineSeconds")
        causes += _nonnegative(spec, "progressDeadlineSeconds")
        if deadline is not None and deadline <= spec.get("minReadySeconds", 0):
            causes.append(
                _invalid(
                    "spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"
                )
            )
    if old is not None and old["spec"].get("selector") != selector:
        causes.append(_invalid("spec.selector", _go_selector(selector), "field is immutable"))
    return causes


def matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """Whether ``labels`` match a LabelSelector (None matches nothing, ``{}`` everything)."""
    if selector is None:
        return False
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels[key] in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def selector_string(selector: Obj | None) -> str:
    """A LabelSelector as ``labels.Selector.String()`` writes it (``app=web,tier in (a,b)``)."""
    if not selector:
        return ""
    requirements = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression["key"], expression["operator"], expression.get("values") or []
        text = {
            "In": f"{key} in ({','.join(sorted(values))})",
            "NotIn": f"{key} notin ({','.join(sorted(values))})",
            "Exists": key,
            "DoesNotExist": f"!{key}",
        }[op]
        requirements.append((key, text))
    return ",".join(text for _, text in sorted(requirements))


# --- parts --------------------------------------------------------------------------------


def _selector(selector: Obj) -> list[Cause]:
    causes = []
    for i, expression in enumerate(selector.get("matchExpressions") or []):
        where = f"spec.selector.matchExpressions[{i}]"
        op, values = expression.get("operator"), expression.get("values")
        if op not in _OPERATORS:
            causes.append(_invalid(f"{where}.operator", _go(op), "not a valid selector operator"))
        elif op in ("In", "NotIn") and not values:
            causes.append(
                (
                    f"{where}.values",
                    "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                )
            )
        elif op in ("Exists", "DoesNotExist") and values:
            causes.append(
                (
                    f"{where}.values",
                    "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    return causes


def _template(template: Obj, selector: Obj | None) -> list[Cause]:
    causes = []
    labels = (template.get("metadata") or {}).get("labels")
    if not matches(selector, labels or {}):
        causes.append(
            _invalid(
                "spec.template.metadata.labels",
                _go_map(labels),
                "`selector` does not match template `labels`",
            )
        )
    spec = template.get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        causes.append(("spec.template.spec.containers", "Required value"))
    names: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(key) or []):
            causes += _container(container, f"spec.template.spec.{key}[{i}]", names)
    policy = spec.get("restartPolicy")
    if policy != "Always":
        causes.append(
            (
                "spec.template.spec.restartPolicy",
                f'Unsupported value: {_go(policy)}: supported values: "Always"',
            )
        )
    if spec.get("activeDeadlineSeconds") is not None:
        causes.append(
            (
                "spec.template.spec.activeDeadlineSeconds",
                "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
            )
        )
    return causes


def _container(container: Obj, where: str, names: set[str]) -> list[Cause]:
    causes = []
    name = container.get("name") or ""
    if not name:
        causes.append((f"{where}.name", "Required value"))
    elif len(name) > 63:
        causes.append(_invalid(f"{where}.name", _go(name), "must be no more than 63 characters"))
    elif not _DNS_LABEL.match(name):
        causes.append(_invalid(f"{where}.name", _go(name), _LABEL_MESSAGE))
    if name and name in names:
        causes.append((f"{where}.name", f"Duplicate value: {_go(name)}"))
    names.add(name)
    if not container.get("image"):
        causes.append((f"{where}.image", "Required value"))
    return causes + _resources(container.get("resources") or {}, f"{where}.resources")


def _resources(resources: Obj, where: str) -> list[Cause]:
    causes = []
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    for key, values in (("limits", limits), ("requests", requests)):
        for name in sorted(values):
            value, _ = quantity.parse(values[name])
            if value < 0:
                causes.append(_invalid(f"{where}.{key}[{name}]", _go(values[name]), _NONNEGATIVE))
            elif name not in _OVERCOMMITTABLE and value.denominator != 1:
                causes.append(
                    _invalid(f"{where}.{key}[{name}]", _go(values[name]), "must be an integer")
                )
    for name in sorted(requests):
        request = quantity.parse(requests[name])[0]
        if name in limits:
            limit = quantity.parse(limits[name])[0]
            if name not in _OVERCOMMITTABLE and request != limit:
                detail = f"must be equal to {name} limit of {limits[name]}"
                causes.append(_invalid(f"{where}.requests", _go(requests[name]), detail))
            elif request > limit:
                detail = f"must be less than or equal to {name} limit of {limits[name]}"
                causes.append(_invalid(f"{where}.requests", _go(requests[name]), detail))
        elif name not in _OVERCOMMITTABLE:
            causes.append(
                (
                    f"{where}.limits",
                    "Required value: Limit must be set for non overcommitable resources",
                )
            )
    return causes


def _strategy(strategy: Obj) -> list[Cause]:
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            message = "Forbidden: may not be specified when strategy `type` is 'Recreate'"
            return [("spec.strategy.rollingUpdate", message)]
        return []
    if kind != "RollingUpdate":
        message = f'Unsupported value: {_go(kind)}: supported values: "Recreate", "RollingUpdate"'
        return [("spec.strategy.type", message)]
    causes = []
    where = "spec.strategy.rollingUpdate"
    for key in ("maxUnavailable", "maxSurge"):
        value = rolling.get(key)
        if isinstance(value, str) and not re.fullmatch(r"[0-9]+%", value):
            causes.append(_invalid(f"{where}.{key}", _go_intstr(value), _PERCENT_MESSAGE))
        elif isinstance(value, int) and value < 0:
            causes.append(_invalid(f"{where}.{key}", value, _NONNEGATIVE))
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    if _amount(unavailable) == 0 and _amount(surge) == 0:
        message = "may not be 0 when `maxSurge` is 0"
        causes.append(_invalid(f"{where}.maxUnavailable", _go_intstr(unavailable), message))
    if isinstance(unavailable, str) and (_amount(unavailable) or 0) > 100:
        message = "must not be greater than 100%"
        causes.append(_invalid(f"{where}.maxUnavailable", _go_intstr(unavailable), message))
    return causes


def _amount(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]+%", value):
        return int(value[:-1])
    return None


def _nonnegative(spec: Obj, key: str) -> list[Cause]:
    value = spec.get(key)
    if isinstance(value, int) and value < 0:
        return [_invalid(f"spec.{key}", value, _NONNEGATIVE)]
    return []


def _decode(kind: str, obj: Obj) -> None:
    """The 400 a value of the wrong type gets: the body cannot be decoded into Go types."""
    spec = obj.get("spec")
    if spec is None:
        return
    if not isinstance(spec, dict):
        message = f"into Go struct field {kind}.spec of type v1.{kind}Spec"
        raise _undecodable(kind, f"json: cannot unmarshal {_json_type(spec)} {message}")
    for key in _INT_FIELDS if kind != "Pod" else ():
        value = spec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            where = f"into Go struct field {kind}Spec.spec.{key} of type int32"
            raise _undecodable(kind, f"json: cannot unmarshal {_json_type(value)} {where}")


def _undecodable(kind: str, why: str) -> errors.ApiError:
    return errors.bad_request(f'{kind} in version "v1" cannot be handled as a {kind}: {why}')


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "value")


# --- values as Go prints them ---------------------------------------------------------------


def _invalid(field: str, shown: Any, detail: str) -> Cause:
    return field, f"Invalid value: {shown}: {detail}"


def _go(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return "null" if value is None else str(value)


def _go_map(labels: dict[str, str] | None) -> str:
    if labels is None:
        return "map[string]string(nil)"
    items = ", ".join(f"{_go(k)}:{_go(v)}" for k, v in sorted(labels.items()))
    return f"map[string]string{{{items}}}"


def _go_strings(values: list[str] | None) -> str:
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go(v) for v in values) + "}"


def _go_selector(selector: Obj | None) -> str:
    selector = selector or {}
    expressions = selector.get("matchExpressions")
    if expressions is None:
        shown = "[]v1.LabelSelectorRequirement(nil)"
    else:
        shown = (
            "[]v1.LabelSelectorRequirement{"
            + ", ".join(
                f"v1.LabelSelectorRequirement{{Key:{_go(e.get('key', ''))}, "
                f"Operator:{_go(e.get('operator', ''))}, Values:{_go_strings(e.get('values'))}}}"
                for e in expressions
            )
            + "}"
        )
    labels = _go_map(selector.get("matchLabels"))
    return f"v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{shown}}}"


def _go_intstr(value: Any) -> str:
    if isinstance(value, str):
        return f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{_go(value)}}}"
    return f'intstr.IntOrString{{Type:0, IntVal:{value or 0}, StrVal:""}}'

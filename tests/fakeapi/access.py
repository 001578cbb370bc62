"""Authentication and authorisation as a kube-apiserver answers them: 401 and 403 ``Status``es.

A bearer token, when the cluster has one, is required on every request (discovery too, as on a
server without anonymous access). Denials are rules (verb, resource, namespace) that a test adds;
a denied request gets the RBAC authoriser's message word for word, since clients and our error
handling read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import kmock

from tests.fakeapi.errors import ApiError

USER = "fake-user"


def verb(request: kmock.Request) -> str:
    """The RBAC verb of a request, as the server's request-info resolver names it."""
    method = str(request.method.value).upper()
    sub = request.subresource or ""
    if sub.startswith("proxy") or sub == "log":
        return {"POST": "create", "PUT": "update", "DELETE": "delete"}.get(method, method.lower())
    if method == "GET":
        if request.params.get("watch") in ("true", "1"):
            return "watch"
        return "get" if request.name else "list"
    if method == "DELETE":
        return "delete" if request.name else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def resource_name(request: kmock.Request) -> tuple[str, str]:
    """(``configmaps`` | ``deployments.apps`` | ``pods/log`` | ``services/proxy``, group)."""
    assert request.resource is not None
    group = request.resource.group or ""
    plural = str(request.resource.plural)
    sub = (request.subresource or "").split("/", 1)[0]
    return (f"{plural}.{group}" if group else plural) + (f"/{sub}" if sub else ""), group


@dataclass
class Access:
    token: str | None = None
    denied: list[tuple[str, str, str | None]] = field(default_factory=list)

    def check(self, request: kmock.Request) -> ApiError | None:
        if self.token is not None:
            header = request.headers.get("Authorization", "")
            if header != f"Bearer {self.token}":
                return ApiError(401, "Unauthorized", "Unauthorized")
        if request.resource is None or request.resource.plural is None or not self.denied:
            return None
        action = verb(request)
        what, group = resource_name(request)
        for rule_verb, rule_resource, rule_namespace in self.denied:
            if rule_verb not in ("*", action) or rule_resource not in ("*", what):
                continue
            if rule_namespace is None or rule_namespace == request.namespace:
                return forbidden(request, action, what, group)
        return None


def forbidden(request: kmock.Request, action: str, what: str, group: str) -> ApiError:
    resource, _, sub = what.partition("/")
    plural = resource.split(".", 1)[0]
    shown = f"{plural}/{sub}" if sub else plural
    subject = f'{resource} "{request.name}"' if request.name else resource
    where = (
        f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
    )
    message = (
        f'{subject} is forbidden: User "{USER}" cannot {action} resource "{shown}" '
        f'in API group "{group}" {where}'
    )
    details = {"kind": plural, "group": group}
    if request.name:
        details["name"] = request.name
    return ApiError(403, "Forbidden", message, details)

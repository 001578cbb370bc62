"""Who a request is and what it may do, as a kube-apiserver answers it: 401 and 403 ``Status``es.

- Authentication: bearer tokens map to users (``FakeCluster.add_user``). Without a token a
  request acts as the cluster's admin ``fake-user`` (group ``system:masters``), unless the
  cluster has an admin token (``FakeCluster(token=)``): then it is required on every request,
  discovery too, as on a server without anonymous access. An unknown token is a 401.
- Authorisation: the denials a test adds (``deny``: verb, resource, namespace; for every user),
  then RBAC from the installed roles (``rbac``) for users outside ``system:masters``.
  Non-resource paths (discovery, ``/version``, ``/openapi``) are every user's, as the default
  ``system:discovery`` role grants them. A denied request gets the RBAC authoriser's message
  word for word, since clients and our error handling read it.
- Admission: a write's new ownerReferences go through ``rbac.owner_references`` as the
  requesting user (:meth:`Access.admit`, called by the store).
- The logs: one :class:`Record` per resource request answered, and one per permission the
  admission plugin checked (code 200 allowed, 403 denied): both are what a user needs.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import kmock

from tests.fakeapi import rbac
from tests.fakeapi.errors import ApiError
from tests.fakeapi.store import Kind, Obj, Store

ADMIN = rbac.User("fake-user", (rbac.MASTERS, "system:authenticated"))


@dataclass(frozen=True)
class Record:
    """One resource request answered: who asked what (as RBAC names it), the HTTP code, and
    when (``time.monotonic()``; not compared: records are facts of what was asked)."""

    user: str
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str | None
    name: str | None
    code: int
    at: float = field(default_factory=time.monotonic, compare=False)


def authenticated(name: str, groups: tuple[str, ...] | list[str] = ()) -> rbac.User:
    """A user as the authenticators make it: a ServiceAccount's token adds its groups, and
    every authenticated user is in ``system:authenticated``."""
    extra = []
    if name.startswith("system:serviceaccount:"):
        namespace = name.split(":")[2]
        extra = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    return rbac.User(name, tuple(dict.fromkeys([*groups, *extra, "system:authenticated"])))


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


def attributes(request: kmock.Request) -> rbac.Attributes:
    """What a resource request asks for (the subresource without a proxy's path)."""
    assert request.resource is not None
    return rbac.Attributes(
        verb=verb(request),
        group=request.resource.group or "",
        resource=str(request.resource.plural),
        subresource=(request.subresource or "").split("/", 1)[0],
        namespace=request.namespace,
        name=request.name,
    )


@dataclass
class Access:
    token: str | None = None  # the admin's, when anonymous requests are refused
    users: dict[str, rbac.User] = field(default_factory=dict)  # by token
    denied: list[tuple[str, str, str | None]] = field(default_factory=list)
    acting: rbac.User | None = None  # the user of the write being served, for admission
    checks: list[Record] = field(default_factory=list)  # what admission asked RBAC about

    def user(self, request: kmock.Request) -> rbac.User | None:
        """Who the request is; None when it must be refused with a 401."""
        header = request.headers.get("Authorization")
        if header is None:
            return ADMIN if self.token is None else None
        token = header.removeprefix("Bearer ")
        if token == header:
            return None
        return ADMIN if token == self.token else self.users.get(token)

    def check(self, request: kmock.Request, store: Store) -> ApiError | None:
        user = self.user(request)
        if user is None:
            return ApiError(401, "Unauthorized", "Unauthorized")
        if request.resource is None or request.resource.plural is None:
            return None
        asked = attributes(request)
        named = asked.resource + (f".{asked.group}" if asked.group else "")
        what = named + (f"/{asked.subresource}" if asked.subresource else "")
        for rule_verb, rule_resource, rule_namespace in self.denied:
            if rule_verb not in ("*", asked.verb) or rule_resource not in ("*", what):
                continue
            if rule_namespace is None or rule_namespace == request.namespace:
                return forbidden(user, asked)
        allowed, reason = rbac.authorize(store, user, asked)
        return None if allowed else forbidden(user, asked, reason)

    def admit(
        self, store: Store, kind: Kind, old: Obj | None, new: Obj, subresource: str | None
    ) -> None:
        """The admission check of the request's own write (raises its 403). Only the first
        write of a request is the user's: what controllers write in reaction is the cluster's."""
        user, self.acting = self.acting, None
        if user is None:
            return
        checked: list[tuple[rbac.Attributes, bool]] = []
        refused = rbac.owner_references(store, user, kind, old, new, subresource, checked)
        for asked, allowed in checked:
            self.checks.append(_record(user, asked, 200 if allowed else 403))
        if refused is not None:
            raise refused

    def check_apply_create(self, request: kmock.Request, store: Store) -> None:
        """A server-side apply that creates the object also needs ``create`` on it
        (``createAuthorizerAttributes`` in the apiserver's patch handler); raises the 403."""
        user = self.user(request)
        if user is None:
            return
        asked = dataclasses.replace(attributes(request), verb="create")
        allowed, reason = rbac.authorize(store, user, asked)
        if user is not ADMIN:
            self.checks.append(_record(user, asked, 200 if allowed else 403))
        if not allowed:
            raise forbidden(user, asked, reason)

    def record(self, request: kmock.Request, code: int) -> Record | None:
        """The log entry of a resource request (None for discovery and other paths)."""
        if request.resource is None or request.resource.plural is None:
            return None
        return _record(self.user(request), attributes(request), code)


def _record(user: rbac.User | None, asked: rbac.Attributes, code: int) -> Record:
    return Record(
        user=user.name if user is not None else "",
        verb=asked.verb,
        group=asked.group,
        resource=asked.resource,
        subresource=asked.subresource,
        namespace=asked.namespace,
        name=asked.name,
        code=code,
    )


def forbidden(user: rbac.User, asked: rbac.Attributes, reason: str = "") -> ApiError:
    """The authoriser's 403 (``responsewriters.Forbidden``)."""
    group, resource, sub = asked.group, asked.resource, asked.subresource
    named = f"{resource}.{group}" if group else resource
    shown = f"{resource}/{sub}" if sub else resource
    subject = f'{named} "{asked.name}"' if asked.name else named
    where = f'in the namespace "{asked.namespace}"' if asked.namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user.name}" cannot {asked.verb} resource "{shown}" '
        f'in API group "{group}" {where}'
    )
    if reason:
        message += f": {reason}"
    details = {"kind": resource}
    if group:  # omitempty
        details["group"] = group
    if asked.name:
        details["name"] = asked.name
    return ApiError(403, "Forbidden", message, details)

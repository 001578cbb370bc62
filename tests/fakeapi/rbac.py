"""RBAC as a kube-apiserver decides it, from the Role/RoleBinding/ClusterRole/ClusterRoleBinding
objects in the store, and the OwnerReferencesPermissionEnforcement admission plugin on top of it.

Pure functions of the store's objects (no I/O), after the real sources:

- ``authorize``: plugin/pkg/auth/authorizer/rbac (ClusterRoleBindings, then the RoleBindings of
  the request's namespace; a RoleBinding may grant a ClusterRole's rules in its namespace;
  subjects by User name, Group, ServiceAccount; ``*`` for verbs, groups, resources and
  ``*/subresource``; resourceNames). ``system:masters`` may do anything. A binding whose role is
  missing adds ``RBAC: role... not found`` to a denial's message, as there.
- ``owner_references``: plugin/pkg/admission/gc. Changing an object's ownerReferences needs
  ``delete`` on the object itself (updates only: a creator could have not created it), and a
  new ``blockOwnerDeletion: true`` needs ``update`` on the owner's ``<plural>/finalizers``;
  ``pods/status`` is exempt. The messages are the plugin's, ``: , <nil>`` included (its
  ``%v, %v`` of an empty reason and a nil error).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kmock

from tests.fakeapi.errors import ApiError
from tests.fakeapi.store import Kind, Obj, Store

GROUP = "rbac.authorization.k8s.io"
KINDS = (
    # plural, kind, namespaced
    ("roles", "Role", True),
    ("rolebindings", "RoleBinding", True),
    ("clusterroles", "ClusterRole", False),
    ("clusterrolebindings", "ClusterRoleBinding", False),
)
ROLES, ROLE_BINDINGS, CLUSTER_ROLES, CLUSTER_ROLE_BINDINGS = (
    kmock.resource(f"{GROUP}/v1/{plural}") for plural, _, _ in KINDS
)
MASTERS = "system:masters"
_REF_FIELDS = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")


@dataclass(frozen=True)
class User:
    """Who a request acts as: a name and its groups."""

    name: str
    groups: tuple[str, ...] = ()

    @property
    def privileged(self) -> bool:
        return MASTERS in self.groups


def service_account(namespace: str, name: str) -> str:
    """The user name of a ServiceAccount's tokens."""
    return f"system:serviceaccount:{namespace}:{name}"


@dataclass(frozen=True)
class Attributes:
    """What a request asks for, as the authorizer sees it."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None


# --- the authorizer ------------------------------------------------------------------------


def authorize(store: Store, user: User, asked: Attributes) -> tuple[bool, str]:
    """(allowed, the reason a denial gives: empty, or the roles its bindings miss)."""
    if user.privileged:
        return True, ""
    missing: list[str] = []
    for rules in _rules_for(store, user, asked.namespace, missing):
        if any(_allows(rule, asked) for rule in rules):
            return True, ""
    if not missing:
        return False, ""
    unique = list(dict.fromkeys(missing))
    return False, "RBAC: " + (unique[0] if len(unique) == 1 else f"[{', '.join(unique)}]")


def _rules_for(
    store: Store, user: User, namespace: str | None, missing: list[str]
) -> Iterator[list[Obj]]:
    """The rules of every role bound to ``user`` that applies in ``namespace``."""
    bindings = [(b, "") for b in _objects(store, CLUSTER_ROLE_BINDINGS)]
    if namespace:
        bindings += [(b, namespace) for b in _objects(store, ROLE_BINDINGS, namespace)]
    for binding, where in bindings:
        if not any(_applies(user, s, where) for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        cluster_wide = ref.get("kind") == "ClusterRole"
        resource = CLUSTER_ROLES if cluster_wide else ROLES
        role = _find(store, resource, None if cluster_wide else where, ref.get("name", ""))
        if role is None:
            kind = "clusterrole" if cluster_wide else "role"
            missing.append(f'{kind}.{GROUP} "{ref.get("name", "")}" not found')
            continue
        yield role.get("rules") or []


def _objects(store: Store, resource: kmock.resource, namespace: str | None = None) -> list[Obj]:
    kind = store.kinds.get(resource)
    return store.items(kind, namespace) if kind is not None else []


def _find(store: Store, resource: kmock.resource, namespace: str | None, name: str) -> Obj | None:
    kind = store.kinds.get(resource)
    return store.find(kind, namespace, name) if kind is not None else None


def _applies(user: User, subject: Obj, namespace: str) -> bool:
    """Whether a binding's subject is ``user`` (a ServiceAccount defaults to the binding's
    namespace, and never matches from a ClusterRoleBinding without one)."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        where = subject.get("namespace") or namespace
        return bool(where) and user.name == service_account(where, str(name))
    return False


def _allows(rule: Obj, asked: Attributes) -> bool:
    resource = asked.resource + (f"/{asked.subresource}" if asked.subresource else "")
    verbs, groups = rule.get("verbs") or [], rule.get("apiGroups") or []
    names = rule.get("resourceNames") or []
    return (
        ("*" in verbs or asked.verb in verbs)
        and ("*" in groups or asked.group in groups)
        and any(
            _resource_matches(r, resource, asked.subresource) for r in rule.get("resources", [])
        )
        and (not names or asked.name in names)
    )


def _resource_matches(rule: str, resource: str, subresource: str) -> bool:
    return rule in ("*", resource) or (bool(subresource) and rule == f"*/{subresource}")


# --- OwnerReferencesPermissionEnforcement ---------------------------------------------------


def owner_references(
    store: Store,
    user: User,
    kind: Kind,
    old: Obj | None,
    new: Obj,
    subresource: str | None,
    checked: list[tuple[Attributes, bool]] | None = None,
) -> ApiError | None:
    """The plugin's 403 for a create (``old`` None) or update by ``user``, or None; the
    permissions it asks the authorizer about (but its "finalize anything" probe) go to
    ``checked`` with their answers."""
    checked = [] if checked is None else checked
    if user.privileged or (kind.resource.plural, subresource) == ("pods", "status"):
        return None
    before, after = _refs(old), _refs(new)
    if (before == after) if old is not None else not after:
        return None  # not changing the references
    meta = new.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name") or meta.get("generateName", "")
    group = kind.resource.group or ""
    if old is not None:
        delete = Attributes(
            "delete", group, str(kind.resource.plural), subresource or "", namespace, name
        )
        checked.append((delete, authorize(store, user, delete)[0]))
        if not checked[-1][1]:
            return _forbidden(kind, name, "cannot set an ownerRef on a resource you can't delete")
    blocking = _new_blocking(before, after)
    anything = Attributes("update", "*", "*", "finalizers", None, "*")
    if not blocking or authorize(store, user, anything)[0]:
        return None
    for ref in blocking:
        owner = _owner_kind(store, ref)
        if owner is None:
            return _forbidden(
                kind,
                name,
                "cannot set blockOwnerDeletion in this case because cannot find RESTMapping for "
                f"APIVersion {ref.get('apiVersion')} Kind {ref.get('kind')}: "
                f"{_no_match(ref)}",
                plain=True,
            )
        finalize = Attributes(
            "update",
            owner.resource.group or "",
            str(owner.resource.plural),
            "finalizers",
            namespace if owner.namespaced else None,
            ref.get("name"),
        )
        allowed, reason = authorize(store, user, finalize)
        checked.append((finalize, allowed))
        if not allowed:
            why = "cannot set blockOwnerDeletion if an ownerReference refers to a resource you "
            return _forbidden(kind, name, why + "can't set finalizers on", reason)
    return None


def _refs(obj: Obj | None) -> list[dict[str, Any]]:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return [{k: ref[k] for k in _REF_FIELDS if k in ref} for ref in refs if isinstance(ref, dict)]


def _new_blocking(before: list[Obj], after: list[Obj]) -> list[Obj]:
    """References that block their owner's deletion and did not before (by owner uid)."""
    old = {ref.get("uid"): ref for ref in before}
    return [
        ref
        for ref in after
        if ref.get("blockOwnerDeletion") is True
        and old.get(ref.get("uid"), {}).get("blockOwnerDeletion") is not True
    ]


def _owner_kind(store: Store, ref: Obj) -> Kind | None:
    """The served resource of a reference's apiVersion and kind (the REST mapping)."""
    for kind in store.kinds.values():
        if (kind.api_version, kind.kind) == (ref.get("apiVersion"), ref.get("kind")):
            return kind
    return None


def _no_match(ref: Obj) -> str:
    """The REST mapper's ``NoKindMatchError``."""
    return f'no matches for kind "{ref.get("kind")}" in version "{ref.get("apiVersion")}"'


def _forbidden(kind: Kind, name: str, why: str, reason: str = "", plain: bool = False) -> ApiError:
    """``admission.NewForbidden``: the resource, the object's name, the plugin's error."""
    error = why if plain else f"{why}: {reason}, <nil>"
    details = {"name": name, "kind": str(kind.resource.plural)}
    if kind.resource.group:
        details["group"] = kind.resource.group
    return ApiError(403, "Forbidden", f'{kind.what} "{name}" is forbidden: {error}', details)

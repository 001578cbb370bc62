"""The fake API server's HTTP face: kmock's scaffold (discovery, HTTP) routing to the store.

Built on ``kmock==0.8`` (pinned: this touches private names, ``Request._raw_request`` and
``kmock._internal.parsing.parse_path``). Its ``KubernetesEmulator`` is not used: the fixes
kopf and kubectl need (stamping, 422 on a failed JSON-patch test, list/watch resourceVersions,
label selectors, the status subresource, ...) were simpler as our own store behind kmock's
server, request parsing and discovery. After the token and deny checks come the faults tests
inject (``faults``: errors as a real server words them, Retry-After, delays), then kmock
reactions, so a test can also answer anything:
``fake["post /apis/apps/v1/namespaces/default/deployments"][:1] << 503``. Watches, pod logs and
the service proxy stream (``streams``, ``proxy``); everything else goes to the store.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import parsing

from tests.fakeapi import controllers, merging, proxy, rbac, scale, schemas, streams
from tests.fakeapi.access import Access, Record, attributes
from tests.fakeapi.errors import ApiError, bad_request, not_found, unsupported_media_type
from tests.fakeapi.faults import Fault, Faults
from tests.fakeapi.selectors import field_selector, label_selector
from tests.fakeapi.store import Event, Kind, Obj, Store

APPLY = "application/apply-patch+yaml"

_GO_TRUE = ("1", "t", "T", "true", "TRUE", "True")
VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

BUILTIN = (
    # resource, kind, namespaced, subresources, short names
    ("v1/namespaces", "Namespace", False, ("status",), ("ns",)),
    ("v1/pods", "Pod", True, ("status", "log", "proxy"), ("po",)),
    ("v1/services", "Service", True, ("status", "proxy"), ("svc",)),
    ("v1/configmaps", "ConfigMap", True, (), ("cm",)),
    ("v1/serviceaccounts", "ServiceAccount", True, (), ("sa",)),
    ("v1/events", "Event", True, (), ("ev",)),
    ("apps/v1/deployments", "Deployment", True, ("status", "scale"), ("deploy",)),
    ("apps/v1/replicasets", "ReplicaSet", True, ("status", "scale"), ("rs",)),
    ("networking.k8s.io/v1/ingresses", "Ingress", True, ("status",), ("ing",)),
    (
        "autoscaling/v2/horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        True,
        ("status",),
        ("hpa",),
    ),
    ("policy/v1/poddisruptionbudgets", "PodDisruptionBudget", True, ("status",), ("pdb",)),
    ("discovery.k8s.io/v1/endpointslices", "EndpointSlice", True, (), ()),
    (
        "apiextensions.k8s.io/v1/customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ("status",),
        ("crd", "crds"),
    ),
    *((f"{rbac.GROUP}/v1/{plural}", kind, ns, (), ()) for plural, kind, ns in rbac.KINDS),
)


def _parse_path(path: str) -> parsing.ParsedPath:
    """kmock 0.8 reads ``/api/v1/namespaces[/name[/status]]`` as a namespaced prefix (and fails)."""
    parts = path.strip("/").split("/")
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return _original_parse_path(path)
    if rest[:1] == ["namespaces"] and (len(rest) <= 2 or rest[2] in ("status", "finalize")):
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        return parsing.ParsedPath(group, version, "namespaces", None, name, sub)
    return _original_parse_path(path)


_original_parse_path = getattr(parsing.parse_path, "__wrapped__", parsing.parse_path)
_parse_path.__wrapped__ = _original_parse_path  # type: ignore[attr-defined]
parsing.parse_path = _parse_path


@attrs.define(kw_only=True)
class FakeKubernetes(kmock.KubernetesScaffold):
    """A stateful fake kube-apiserver; serve it with ``kmock.Server(fake)`` (see ``cluster``)."""

    store: Store = attrs.field(factory=Store, init=False)
    served: list[tuple[str, str, int]] = attrs.field(factory=list, init=False)  # method, path, code
    requests: list[Record] = attrs.field(factory=list, init=False)
    closing: bool = attrs.field(default=False, init=False)
    access: Access = attrs.field(factory=Access, init=False)
    logs: streams.PodLogs = attrs.field(factory=streams.PodLogs, init=False)
    routes: proxy.Routes = attrs.field(factory=dict, init=False)
    faults: Faults = attrs.field(factory=Faults, init=False)
    watches: streams.Watches = attrs.field(factory=dict, init=False)
    _held: set[asyncio.Future[aiohttp.web.StreamResponse]] = attrs.field(factory=set, init=False)
    _own_reactions: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for resource, kind, namespaced, subresources, short in BUILTIN:
            res = kmock.resource(resource)
            self.store.kinds[res] = Kind(res, kind, namespaced, frozenset(subresources), short)
        controllers.install(self.store)
        self.store.hooks.append(self._on_crd)
        self.store.admission_hooks.append(self.access.admit)
        self._sync_discovery()
        namespaces = self.store.kinds[controllers.NAMESPACES]
        for name in ("default", "kube-system"):
            self.store.create(
                namespaces, None, {"metadata": {"name": name}, "status": {"phase": "Active"}}
            )
        self.fallback[self._is_resource] << self._serve
        self.fallback["get /openapi/v3"] << self._serve_openapi
        self.fallback["get", re.compile(r"/openapi/v3/.+")] << self._serve_openapi_group
        self._own_reactions = len(self._payloads)

    def _on_crd(self, store: Store, event: Event) -> None:
        if event.resource == controllers.CRDS:
            self._sync_discovery()

    def _sync_discovery(self) -> None:
        self.resources.clear()
        for res, kind in self.store.kinds.items():
            self.resources[res] = kmock.ResourceInfo(
                kind=kind.kind,
                namespaced=kind.namespaced,
                verbs=set(VERBS),
                singular=kind.kind.lower(),
                shortnames=set(kind.short_names),
                categories=set(kind.categories),
                subresources=set(kind.subresources),
            )

    async def _serve_server_version(self, request: kmock.Request) -> kmock.Payload:
        return {
            "major": "1",
            "minor": "32",
            "gitVersion": "v1.32.0-fake",
            "platform": "linux/amd64",
        }

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload | kmock.Response:
        """An APIResourceList; subresources get no short names (kubectl calls those ambiguous)."""
        assert request.resource is not None
        group, version = request.resource.group, request.resource.version
        kinds = [k for r, k in self.store.kinds.items() if (r.group, r.version) == (group, version)]
        if not kinds:  # the real server's answer for a group/version it does not serve
            return kmock.Response(status=404, payload=not_found("resource").status())
        resources = []
        for kind in sorted(kinds, key=lambda k: str(k.resource.plural)):
            plural = kind.resource.plural
            resources.append(
                {
                    "name": plural,
                    "singularName": kind.kind.lower(),
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": list(VERBS),
                    "shortNames": list(kind.short_names),
                    "categories": list(kind.categories),
                }
            )
            for sub in sorted(kind.subresources):
                entry = {
                    "name": f"{plural}/{sub}",
                    "singularName": "",
                    "namespaced": kind.namespaced,
                    "kind": kind.kind,
                    "verbs": ["get", "patch", "update"],
                }
                if sub == "scale":  # kubectl scale reads the Scale's group and version here
                    entry.update(group="autoscaling", version="v1", kind="Scale")
                resources.append(entry)
        group_version = f"{group}/{version}" if group else version
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }

    async def _serve_openapi(self, request: kmock.Request) -> kmock.Payload:
        """Just enough OpenAPI v3 for kubectl to validate on the server (``fieldValidation``)."""
        versions = {k.api_version for k in self.store.kinds.values()}
        paths = {}
        for version in sorted(versions):
            prefix = "api" if "/" not in version else "apis"
            paths[f"{prefix}/{version}"] = {
                "serverRelativeURL": f"/openapi/v3/{prefix}/{version}?hash={self.store.rv}"
            }
        return {"paths": paths}

    async def _serve_openapi_group(self, request: kmock.Request) -> kmock.Payload:
        path = request.url.path.removeprefix("/openapi/v3/")
        version = (
            path.removeprefix("api/") if path.startswith("api/") else path.removeprefix("apis/")
        )
        paths = {}
        for kind in self.store.kinds.values():
            if kind.api_version != version:
                continue
            group = kind.resource.group
            scope = "/namespaces/{namespace}" if kind.namespaced else ""
            url = f"/{path.split('/', 1)[0]}/{version}{scope}/{kind.resource.plural}/{{name}}"
            gvk = {"group": group, "version": kind.resource.version, "kind": kind.kind}
            param = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}
            paths[url] = {
                "patch": {
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [param],
                    "responses": {"200": {"description": "OK"}},
                }
            }
        if not paths:
            raise kmock.KubernetesNotFoundError()
        info = {"title": "Kubernetes", "version": "v1.32.0-fake"}
        return {"openapi": "3.0.0", "info": info, "paths": paths, "components": {"schemas": {}}}

    @staticmethod
    def _is_resource(request: kmock.Request) -> bool:
        return request.resource is not None and request.resource.plural is not None

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        refused = self.access.check(request, self.store)
        if refused is not None:
            return self._refuse(request, refused)
        if not self._is_resource(request):
            return await super()._handle(request)
        asked, user = attributes(request), self.access.user(request)
        fault = self.faults.take(asked, user.name if user is not None else "")
        if fault is None:
            return await self._resource(request)
        # Held or not, the request goes on if its client leaves (a real server finishes what it
        # started): aiohttp's test server would cancel it.
        held = asyncio.ensure_future(self._faulted(request, fault, asked))
        self._held.add(held)
        held.add_done_callback(self._held.discard)
        return await asyncio.shield(held)

    async def _faulted(
        self, request: kmock.Request, fault: Fault, asked: rbac.Attributes
    ) -> aiohttp.web.StreamResponse:
        """Act out an injected fault: wait, then answer it or serve the request."""
        await asyncio.sleep(fault.delay)
        if fault.code is None:
            return await self._resource(request)
        self.answered(request, fault.code)
        return fault.answer(asked)

    async def _resource(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        sub, plural = request.subresource or "", request.resource.plural  # type: ignore[union-attr]
        # The API server reads `watch` as a Go bool (strconv.ParseBool); kmock knows only "true".
        method = str(request.method.value).upper()
        asked_watch = request.params.get("watch") in _GO_TRUE and method == "GET"
        if request.action == kmock.action.WATCH or asked_watch:
            return await streams.watch(self, request)
        if plural == "pods" and sub == "log" and request.name:
            return await streams.logs(self, request)
        if plural in ("services", "pods") and sub.split("/")[0] == "proxy" and request.name:
            try:
                response = await proxy.forward(self.store, self.routes, request, plural)
            except ApiError as exc:
                return self._refuse(request, exc)
            self.answered(request, response.status)
            return response
        # kmock matches a reaction by scanning every request seen so far (quadratic): go
        # straight to the store unless a test has added reactions of its own.
        if len(self._payloads) == self._own_reactions:
            served = await self._serve(request)
            return await served(request)
        return await super()._handle(request)

    def answered(self, request: kmock.Request, code: int) -> None:
        """Log a request answered with ``code`` (``served``, and ``requests`` for resources)."""
        self.served.append((str(request.method.value).upper(), request.url.path, code))
        record = self.access.record(request, code)
        if record is not None:
            self.requests.append(record)

    def _refuse(self, request: kmock.Request, error: ApiError) -> aiohttp.web.Response:
        self.answered(request, error.code)
        return aiohttp.web.json_response(error.status(), status=error.code)

    async def _serve(self, request: kmock.Request) -> kmock.Response:
        if str(request.method.value).upper() in ("POST", "PUT", "PATCH"):
            self.access.acting = self.access.user(request)  # for the admission of its write
        try:
            code, payload = self._dispatch(request)
        except ApiError as exc:
            code, payload = exc.code, exc.status()
        finally:
            self.access.acting = None
        self.answered(request, code)
        return kmock.Response(status=code, payload=payload)

    def _dispatch(self, request: kmock.Request) -> tuple[int, Obj]:
        assert request.resource is not None
        kind = self.store.kind(request.resource)
        ns, name, sub = request.namespace, request.name, request.subresource
        if (ns and not kind.namespaced) or (sub and sub not in kind.subresources):
            raise not_found(kind.what)
        params = request.params
        method = str(request.method.value).upper()
        options: dict[str, Any] = {
            "dry_run": params.get("dryRun") == "All",
            "strict": params.get("fieldValidation") == "Strict",
            "manager": params.get("fieldManager") or _manager_from(request),
        }
        if sub == "scale" and name is not None:
            return 200, self._scale(request, kind, method, options)
        if method == "GET":
            return 200, self._read(request, kind)
        if method == "POST" and name is None:
            return 201, self.store.create(kind, ns, self._body(request), **options)
        if method == "DELETE":
            return 200, self._delete(request, kind, options["dry_run"])
        if method == "PATCH" and name is not None and _content_type(request) == APPLY:
            return self._apply(request, kind, options)
        if "force" in params and method == "PATCH":
            raise _invalid_options("force", "Forbidden: may not be specified for non-apply patch")
        if method in ("PATCH", "PUT") and name is not None:
            change = self._change(request, kind) if method == "PATCH" else self._replace(request)
            return 200, self.store.update(kind, ns, name, change, subresource=sub, **options)
        raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method ({method})")

    def _apply(
        self, request: kmock.Request, kind: Kind, options: dict[str, Any]
    ) -> tuple[int, Obj]:
        assert request.name is not None
        manager = request.params.get("fieldManager")
        if not manager:
            raise _invalid_options("fieldManager", "Required value: is required for apply patch")
        try:
            config = yaml.safe_load(request.body.decode() or "null")
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise bad_request(f"error decoding YAML: {exc}") from None
        existed = self.store.find(kind, request.namespace, request.name) is not None
        if not existed and request.subresource is None:
            self.access.check_apply_create(request, self.store)
        obj = self.store.apply(
            kind,
            request.namespace,
            request.name,
            config,
            manager=manager,
            force=request.params.get("force") in ("1", "t", "T", "true", "TRUE", "True"),
            subresource=request.subresource,
            dry_run=options["dry_run"],
            strict=options["strict"],
        )
        return (200 if existed else 201), obj

    def _scale(
        self, request: kmock.Request, kind: Kind, method: str, options: dict[str, Any]
    ) -> Obj:
        ns, name = request.namespace, request.name
        assert name is not None
        write = {k: options[k] for k in ("dry_run", "manager")}
        if method == "GET":
            return scale.read(self.store, kind, ns, name)
        if method == "PUT":
            return scale.write(self.store, kind, ns, name, self._body(request), **write)
        content_type = _content_type(request)
        if method == "PATCH" and content_type != APPLY:
            body = self._body(request)
            return scale.patch(self.store, kind, ns, name, content_type, body, **write)
        if method == "PATCH":
            raise unsupported_media_type(content_type)
        raise ApiError(405, "MethodNotAllowed", f"the server does not allow this method ({method})")

    def _read(self, request: kmock.Request, kind: Kind) -> Obj:
        ns, name = request.namespace, request.name
        if name is not None:
            items = [self.store.get(kind, ns, name)]
            rv = items[0]["metadata"]["resourceVersion"]
        else:
            params = request.params
            items, rv = self.store.select(
                kind,
                ns,
                label_selector(params.get("labelSelector")),
                field_selector(params.get("fieldSelector")),
            )
        if "as=Table" in request.headers.get("Accept", ""):
            include = request.params.get("includeObject", "Metadata")
            return schemas.table(items, kind.columns, resource_version=rv, include_object=include)
        if name is not None:
            return items[0]
        return {
            "apiVersion": kind.api_version,
            "kind": f"{kind.kind}List",
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    def _delete(self, request: kmock.Request, kind: Kind, dry_run: bool) -> Obj:
        body = request.data if isinstance(request.data, dict) else {}
        propagation = request.params.get("propagationPolicy") or body.get("propagationPolicy")
        uid = (body.get("preconditions") or {}).get("uid")
        propagation = str(propagation or "Background")
        if request.name is not None:
            return self.store.delete(
                kind,
                request.namespace,
                request.name,
                uid=uid,
                dry_run=dry_run,
                propagation=propagation,
            )
        items, rv = self.store.select(
            kind,
            request.namespace,
            label_selector(request.params.get("labelSelector")),
            field_selector(request.params.get("fieldSelector")),
        )
        for item in items:
            meta = item["metadata"]
            self.store.delete(
                kind, meta.get("namespace"), meta["name"], dry_run=dry_run, propagation=propagation
            )
        return {
            "apiVersion": kind.api_version,
            "kind": f"{kind.kind}List",
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    @staticmethod
    def _body(request: kmock.Request) -> Any:
        content_type = request.headers.get("Content-Type", "application/json").split(";")[0]
        if "protobuf" in content_type or "yaml" in content_type:
            raise unsupported_media_type(content_type)
        if request.data is None or not isinstance(request.data, dict | list):
            raise bad_request("the request body is not valid JSON")
        return request.data

    def _change(self, request: kmock.Request, kind: Kind) -> Any:
        content_type = _content_type(request)
        if content_type == "application/strategic-merge-patch+json" and kind.custom:
            raise unsupported_media_type(content_type)
        patch = self._body(request)
        if content_type == "application/json-patch+json":
            return lambda obj: merging.json_patch(obj, patch)
        if content_type == "application/merge-patch+json":
            return lambda obj: merging.merge_patch(obj, patch)
        if content_type == "application/strategic-merge-patch+json":
            return lambda obj: merging.strategic_merge(obj, patch)
        raise unsupported_media_type(content_type)

    def _replace(self, request: kmock.Request) -> Any:
        body = self._body(request)
        return lambda obj: body


def _content_type(request: kmock.Request) -> str:
    return request.headers.get("Content-Type", "").split(";")[0].strip()


def _manager_from(request: kmock.Request) -> str:
    """The server's default field manager: the User-Agent up to its first ``/``."""
    agent = request.headers.get("User-Agent", "").split("/", 1)[0]
    return "".join(c for c in agent if c.isprintable())[:128]


def _invalid_options(field_: str, problem: str) -> ApiError:
    """What the server answers to bad PatchOptions (a 422, before it looks the object up)."""
    message = f'PatchOptions.meta.k8s.io "" is invalid: {field_}: {problem}'
    reason = "FieldValueRequired" if problem.startswith("Required") else "FieldValueForbidden"
    cause = {"reason": reason, "message": problem, "field": field_}
    details = {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [cause]}
    return ApiError(422, "Invalid", message, details)

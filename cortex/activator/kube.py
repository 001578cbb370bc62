"""The activator's Kubernetes client: list and watch, read and write ``/scale``. aiohttp only.

Credentials: the pod's service account (in a cluster), else the current context of
``$KUBECONFIG`` (or ``~/.kube/config``) with a token, client certificate or none.

:meth:`Kube.informer` lists a resource, then watches it from the list's resourceVersion and
lists again whenever the watch ends or expires (410): the callback gets every object
(``"SYNC"`` with the full list, then ``ADDED``/``MODIFIED``/``DELETED``), so a lost event
heals at the next relist. :meth:`Kube.wake` is the one write: read a ``/scale``, and if its
``spec.replicas`` is 0, write it back with ``replicas`` and the resourceVersion it read, so a
write that raced another (activator, operator, HPA) fails with 409 instead of undoing it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from cortex import errors

__all__ = ["Kube", "Listed"]

logger = logging.getLogger(__name__)
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
WATCH_SECONDS = 290  # the server ends a watch after this; the informer watches again
Listed = Callable[[str, list[dict[str, Any]]], Awaitable[None] | None]


class Kube:
    """An API server's URL, headers and TLS context, and the aiohttp session that uses them."""

    def __init__(self, url: str, headers: dict[str, str], tls: ssl.SSLContext | bool) -> None:
        self.url = url.rstrip("/")
        self.headers = headers
        self.tls = tls
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None) -> Kube:
        """In-cluster credentials when there are some, else the kubeconfig's current context."""
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        if kubeconfig is None and host and (SERVICE_ACCOUNT / "token").exists():
            tls = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt"))
            token = (SERVICE_ACCOUNT / "token").read_text().strip()
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            return cls(f"https://{host}:{port}", {"Authorization": f"Bearer {token}"}, tls)
        path = kubeconfig or os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        return cls._from_kubeconfig(Path(path.split(os.pathsep)[0]))

    @classmethod
    def _from_kubeconfig(cls, path: Path) -> Kube:
        try:
            config = yaml.safe_load(path.read_text())
            context = _named(config, "contexts", config["current-context"])["context"]
            cluster = _named(config, "clusters", context["cluster"])["cluster"]
            user = _named(config, "users", context["user"]).get("user") or {}
        except (OSError, KeyError, StopIteration, TypeError, yaml.YAMLError) as exc:
            raise errors.CortexError(f"kubeconfig {path}: cannot read its context: {exc}") from None
        headers = {"Authorization": f"Bearer {user['token']}"} if user.get("token") else {}
        url = cluster["server"]
        if not url.startswith("https"):
            return cls(url, headers, False)
        if cluster.get("insecure-skip-tls-verify"):
            tls = ssl.create_default_context()
            tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        else:
            ca = _pem(cluster, "certificate-authority")
            tls = ssl.create_default_context(cadata=ca)
        cert, key = _pem(user, "client-certificate"), _pem(user, "client-key")
        if cert and key:
            with tempfile.TemporaryDirectory() as folder:  # ssl reads certificates from files
                (Path(folder) / "c").write_text(cert)
                (Path(folder) / "k").write_text(key)
                tls.load_cert_chain(Path(folder) / "c", Path(folder) / "k")
        return cls(url, headers, tls)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_read=WATCH_SECONDS + 30)
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session().request(
            method, self.url + path, json=body, ssl=self.tls
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def wake(self, path: str, replicas: int) -> bool:
        """Scale ``path`` (a ``.../scale``) from 0 to ``replicas``; True if this write did it.

        False when it has replicas already or another write won (409); raises
        :class:`cortex.errors.TemporaryError` on any other failure, which the caller retries.
        """
        status, scale = await self.request("GET", path)
        if status != 200:
            raise errors.TemporaryError(f"GET {path}: {status} {_reason(scale)}")
        if (scale.get("spec") or {}).get("replicas", 0) != 0:
            return False
        scale["spec"] = {**(scale.get("spec") or {}), "replicas": replicas}
        status, answer = await self.request("PUT", path, scale)  # metadata.resourceVersion kept
        if status == 409:
            return False
        if status != 200:
            raise errors.TemporaryError(f"PUT {path}: {status} {_reason(answer)}")
        return True

    async def informer(self, path: str, on_event: Listed, selector: str = "") -> None:
        """List ``path`` and watch it, for ever; ``on_event(type, objects)`` sees each change."""
        query = f"?labelSelector={selector}" if selector else ""
        while True:
            try:
                status, listing = await self.request("GET", path + query)
                if status != 200:
                    raise errors.TemporaryError(f"list {path}: {status} {_reason(listing)}")
                await _call(on_event, "SYNC", listing.get("items") or [])
                await self._watch(path, selector, listing["metadata"]["resourceVersion"], on_event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server restarted, a token rotated: list again
                logger.warning("watch %s: %s; listing again", path, exc)
                await asyncio.sleep(1)

    async def _watch(self, path: str, selector: str, version: str, on_event: Listed) -> None:
        params = {
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        if selector:
            params["labelSelector"] = selector
        async with self.session().get(self.url + path, params=params, ssl=self.tls) as response:
            if response.status != 200:
                raise errors.TemporaryError(f"watch {path}: {response.status}")
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event["type"] == "ERROR":
                    return  # 410 Gone, mostly: list again
                if event["type"] != "BOOKMARK":
                    await _call(on_event, event["type"], [event["object"]])


async def _call(on_event: Listed, kind: str, objects: list[dict[str, Any]]) -> None:
    result = on_event(kind, objects)
    if result is not None:
        await result


def _named(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(item for item in config[section] if item["name"] == name)
    return found


def _pem(section: dict[str, Any], key: str) -> str | None:
    if section.get(f"{key}-data"):
        return base64.b64decode(section[f"{key}-data"]).decode()
    if section.get(key):
        return Path(section[key]).read_text()
    return None


def _reason(body: Any) -> str:
    return str(body.get("message", "")) if isinstance(body, dict) else ""

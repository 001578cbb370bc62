"""Serves ``/docs`` with no internet: Swagger UI's files from the ``swagger-ui-bundle`` package.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN, so it is blank offline and in a
cluster without egress. Here the page and its script, style and icon come from the runtime
itself (under ``/docs/assets/``). Without the package (it comes with the ``serve`` extra), the
page says so and links to the OpenAPI document, which the runtime always serves.
"""

from __future__ import annotations

import html
import importlib
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

__all__ = ["ASSETS", "PATH", "add_docs"]

PATH = "/docs"
ASSETS = "/docs/assets"


def add_docs(routes: FastAPI, title: str) -> None:
    """Add ``GET /docs`` (and its assets) to ``routes``, whose OpenAPI document it shows."""
    folder = _swagger_ui()
    openapi = routes.openapi_url or "/openapi.json"
    if folder is None:
        page = _without_ui(title, openapi)
        routes.add_api_route(PATH, lambda: page, methods=["GET"], include_in_schema=False)
        return
    routes.mount(ASSETS, StaticFiles(directory=folder), name="docs-assets")
    page = get_swagger_ui_html(
        openapi_url=openapi,
        title=f"{title} - docs",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        # Swagger UI would show a badge fetched from validator.swagger.io, with this page's
        # address in the request: nothing here leaves the machine.
        swagger_ui_parameters={"validatorUrl": None},
    )
    routes.add_api_route(PATH, lambda: page, methods=["GET"], include_in_schema=False)


def _swagger_ui() -> Path | None:
    """The folder of Swagger UI's files, None when the package is not installed."""
    try:
        bundle = importlib.import_module("swagger_ui_bundle")
    except ImportError:
        return None
    return Path(str(bundle.swagger_ui_path))


def _without_ui(title: str, openapi: str) -> HTMLResponse:
    name, link = html.escape(title), html.escape(openapi)
    return HTMLResponse(
        f"<!doctype html><html><head><title>{name} - docs</title></head><body>"
        f"<h1>{name}</h1><p>Swagger UI is not installed in this runtime "
        f"(<code>pip install swagger-ui-bundle</code>, part of the <code>serve</code> extra). "
        f'The API is described by its OpenAPI document: <a href="{link}">{link}</a>.</p>'
        "</body></html>"
    )

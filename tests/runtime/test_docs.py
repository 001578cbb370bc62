"""/docs works offline: its page and assets come from the runtime itself, through a real runtime
process; the OpenAPI document's request body comes from the project's sample.json."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from cortex.runtime import docs
from tests.conftest import serving
from tests.runtime.harness import RuntimeProcess, write_spec

_URL = re.compile(r"""(?:src|href|url)\s*[:=]\s*["']([^"']+)["']""")


def _urls(page: str) -> list[str]:
    return _URL.findall(page)


def test_docs_reference_only_their_own_assets_and_every_one_answers(tmp_path: Path) -> None:
    pytest.importorskip("swagger_ui_bundle")
    with RuntimeProcess(write_spec(tmp_path, "echo.py")) as runtime:
        page = runtime.get("/docs")
        urls = _urls(page.text)
        answers = {url: runtime.get(url).status_code for url in urls}

    assert page.status_code == 200
    assert "SwaggerUIBundle" in page.text
    assert '"validatorUrl": null' in page.text  # no badge fetched from swagger.io
    assert {f"{docs.ASSETS}/swagger-ui-bundle.js", f"{docs.ASSETS}/swagger-ui.css"} <= set(urls)
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert answers == dict.fromkeys(urls, 200)


@pytest.mark.anyio
async def test_without_swagger_ui_docs_say_so_and_link_the_openapi_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "swagger_ui_bundle", None)  # as if not installed
    async with serving("echo.py") as client:
        page = await client.get("/docs")
        urls = _urls(page.text)
        answers = [(await client.get(url)).status_code for url in urls]

    assert page.status_code == 200
    assert "Swagger UI is not installed" in page.text
    assert (urls, answers) == (["/openapi.json"], [200])


def test_sample_json_fills_the_request_schema_and_the_docstring_describes_it(
    tmp_path: Path,
) -> None:
    spec = write_spec(tmp_path, "described.py", networking={"endpoint": "/labels"})
    (tmp_path / "sample.json").write_text('{"text": "a good day", "top": 2, "tags": ["x"]}')
    with RuntimeProcess(spec) as runtime:
        post = runtime.get("/openapi.json").json()["paths"]["/labels"]["post"]
        sample = json.loads((tmp_path / "sample.json").read_text())
        tried = runtime.post(
            "/labels", json=post["requestBody"]["content"]["application/json"]["example"]
        )

    body = post["requestBody"]["content"]["application/json"]
    assert body == {
        "schema": {
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "top": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
        },
        "example": sample,
    }
    assert post["description"].startswith('Says whether ``{"text": ...}`` is positive.')
    assert tried.json() == {"label": "positive"}


def test_without_sample_json_the_request_schema_is_open(tmp_path: Path) -> None:
    with RuntimeProcess(write_spec(tmp_path, "described.py")) as runtime:
        post = runtime.get("/openapi.json").json()["paths"]["/predict"]["post"]

    assert post["requestBody"]["content"]["application/json"] == {"schema": {}}

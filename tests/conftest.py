"""Shared factories: API specs from keyword overrides, and an in-process runtime over HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        help="run the reliability suite (tests/reliability) at full size, not its CI form",
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def spec_dict(name: str = "test-api", path: str = "echo.py", **sections: Any) -> dict[str, Any]:
    """One API as a dict; ``predictor=dict(...)`` and other sections are merged over defaults."""
    api: dict[str, Any] = {"name": name, "kind": "RealtimeAPI"}
    api["predictor"] = {"type": "python", "path": path, **sections.pop("predictor", {})}
    api.update(sections)
    return api


def make_api(
    name: str = "test-api", path: str = "echo.py", base_dir: Path = FIXTURES, **sections: Any
):
    from cortex.spec import parse_specs

    text = yaml.safe_dump([spec_dict(name, path, **sections)])
    return parse_specs(text, base_dir)[0]


@asynccontextmanager
async def serving(path: str, **sections: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A loaded runtime for the fixture predictor ``path``, spoken to over ASGI HTTP."""
    from cortex.runtime import Limits, ProcessState, create_app

    limits = sections.pop("limits", Limits())
    any_path = sections.pop("any_path", False)
    runtime = ProcessState(make_api(path=path, **sections), FIXTURES, limits=limits)
    app = create_app(runtime, any_path=any_path)
    await runtime.load()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.runtime = runtime
            yield client
    finally:
        runtime.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

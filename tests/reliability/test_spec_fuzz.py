"""Fuzzed specs: ``parse_specs`` raises only SpecError, quickly, whatever the document; a spec
it accepts also hashes and renders.

Documents come in three shapes: the spec's structure with random keys and values of every type
(huge numbers, control characters, deep values), the same with hostile YAML spliced in (anchors
and alias bombs, recursive aliases, tags such as ``!!python/object``, deep nesting), and raw
random text. Accepted specs are rendered and the objects checked as the API server would.
"""

from __future__ import annotations

import contextlib
import copy
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cortex.errors import SpecError
from cortex.k8s import OperatorSettings, Owner, render
from cortex.spec import parse_api_spec, parse_specs, spec_hash
from tests.k8s.conftest import KUBERNETES_VERSIONS, validate_manifest

# CPU seconds of this thread per document (thread_time: time spent waiting for a busy
# machine does not count, a stall does); a stall is tens of seconds.
BOUND_SECONDS = 5.0
OWNER_UID = "0f6c2d4e-8a1b-4c3d-9e5f-7a8b9c0d1e2f"

FIELDS: dict[str | None, list[str]] = {
    None: ["kind", "predictor", "compute", "autoscaling", "update_strategy", "networking"],
    "predictor": [
        *("type", "path", "config", "processes_per_replica", "threads_per_process"),
        *("server_side_batching", "env", "env_refs", "image", "service_account"),
        *("python_path", "log_level"),
    ],
    "compute": ["cpu", "mem", "gpu"],
    "autoscaling": [
        *("min_replicas", "max_replicas", "init_replicas", "max_replica_concurrency"),
        *("target_replica_concurrency", "window", "downscale_stabilization_period"),
        *("upscale_stabilization_period", "max_downscale_factor", "max_upscale_factor"),
        *("downscale_tolerance", "upscale_tolerance"),
    ],
    "update_strategy": ["max_surge", "max_unavailable"],
    "networking": ["endpoint", "hostname", "request_timeout", "local_port", "auth"],
    "project": ["configMap", "sha256"],
}
# Values near the rules' edges, which random values rarely hit.
EDGES = [
    *("1e999999", "9" * 400, "9" * 30 + "s", "1m30s", "0.0001ms", "200m", "2Ei", "25%", "100%"),
    *("999999999999%", "/", "//x", "/a/../b", "/healthz", "*.example.com", "../x.py", "a.py"),
    *("predictor.py", "repo/img:1", "Repo/Img", "a" * 300, "CORTEX_X", "x\x00y", "\u202e", ""),
    *(2**31, 2**63, -(2**63), 10**30, 1e308, -0.0, 0.5, True, False, None),
    {"token_env": "TOKEN"},
    {"secret": "s", "key": "k"},
    {"max_batch_size": 8, "batch_interval": "10ms"},
]
HOSTILE_VALUES = [
    "&a [*a]",
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!!binary AAEC",
    "!!set {a, b}",
    "!!timestamp 2001-12-14",
    "!custom x",
    '"\\ud800"',
    '"\\0\\e\\x7f"',
    ".inf",
    ".nan",
    "2001-13-45",
    "0x" + "f" * 200,
    "0o" + "7" * 200,
    "1_000_000",
    "<<: {a: 1}",
]


def _scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=10**20, max_value=10**90),
        st.floats(),
        st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
        st.sampled_from(EDGES),
    )


def _values() -> st.SearchStrategy[Any]:
    keys = st.one_of(st.text(max_size=8), st.integers(), st.sampled_from(["token_env", "key"]))
    return st.recursive(
        _scalars(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=8,
    )


def _one_in(n: int) -> st.SearchStrategy[bool]:
    return st.sampled_from([True] + [False] * (n - 1))


@st.composite
def _structured(draw: st.DrawFn) -> dict[str, Any]:
    """A mostly valid API with a few fields set to random or edge values."""
    api: dict[str, Any] = {
        "name": draw(st.text(max_size=12)) if draw(_one_in(4)) else "iris",
        "kind": "RealtimeAPI",
        "predictor": {"type": "python", "path": "predictor.py"},
    }
    for _ in range(draw(st.integers(0, 3))):
        section = draw(st.sampled_from(list(FIELDS)))
        field = draw(st.text(max_size=8) if draw(_one_in(4)) else st.sampled_from(FIELDS[section]))
        # A copy: the next field may be set inside it, and EDGES is shared between examples.
        value = copy.deepcopy(draw(_values() if draw(_one_in(2)) else st.sampled_from(EDGES)))
        if section is None:
            api[field] = value
        elif isinstance(api.setdefault(section, {}), dict):
            api[section][field] = value
    return api


def _dump(data: object) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=10**6)


@st.composite
def _spliced(draw: st.DrawFn) -> str:
    """A structured document with one value replaced by hostile YAML text."""
    text = _dump([draw(_structured())])
    marker = "predictor.py"
    hostile = draw(st.sampled_from(HOSTILE_VALUES) | st.builds(_bomb, st.integers(1, 12)))
    return text.replace(marker, f"predictor.py\n    config: {{x: {hostile}}}", 1)


def _bomb(levels: int) -> str:
    anchors = ["&l0 [lol, lol, lol, lol, lol, lol, lol, lol]"]
    anchors += [f"&l{n} [{', '.join([f'*l{n - 1}'] * 8)}]" for n in range(1, levels)]
    return "[" + ", ".join(anchors) + "]"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


DOCUMENTS = st.one_of(
    _structured().map(lambda api: _dump([api])),
    _structured().map(lambda api: _dump([api])),
    _structured().map(_dump),
    _spliced(),
    st.integers(1, 300).map(_nested),
    st.text(max_size=200),
    st.text(st.sampled_from("-:{}[]&*!|>'\"#%@`, \n\t?abc01"), max_size=200),
)


def test_parse_specs_raises_only_spec_errors_quickly(
    tmp_path: Path, size: Any, figures: Any
) -> None:
    (tmp_path / "predictor.py").write_text("class PythonPredictor: ...\n")
    counts = {"documents": 0, "accepted": 0, "refused": 0}

    @settings(
        max_examples=size(1_000, 10_000),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(text=DOCUMENTS, base_dir=st.sampled_from([None, tmp_path]))
    def check(text: str, base_dir: Path | None) -> None:
        counts["documents"] += 1
        started = time.thread_time()
        try:
            apis = parse_specs(text, base_dir)
        except SpecError as exc:
            counts["refused"] += 1
            lines = str(exc).split("\n")  # one line per error, each printable
            assert all(line and line.isprintable() for line in lines)
        else:
            counts["accepted"] += 1
            for api in apis:
                _use(api)
        assert time.thread_time() - started < BOUND_SECONDS

    try:
        check()
    finally:
        escapes = counts["documents"] - counts["accepted"] - counts["refused"]
        figures.record(
            "cortex.yaml documents fuzzed",
            sent=counts["documents"],
            lost=escapes,
            accepted=counts["accepted"],
            refused=counts["refused"],
        )


def test_resource_specs_raise_only_spec_errors(size: Any, figures: Any) -> None:
    """The operator's path: a RealtimeAPI resource's spec as JSON-like data, no YAML."""
    counts = {"specs": 0, "settled": 0, "accepted": 0}

    @settings(max_examples=size(500, 5_000), deadline=None)
    @given(api=_structured())
    def check(api: dict[str, Any]) -> None:
        counts["specs"] += 1
        body = {k: v for k, v in api.items() if k not in ("name", "kind")}
        with contextlib.suppress(SpecError):
            _use(parse_api_spec("iris", body))
            counts["accepted"] += 1
        counts["settled"] += 1

    try:
        check()
    finally:
        escapes = counts["specs"] - counts["settled"]
        figures.record(
            "RealtimeAPI resource specs fuzzed",
            sent=counts["specs"],
            lost=escapes,
            accepted=counts["accepted"],
        )


def _use(api: Any) -> None:
    """What happens next to an accepted spec: hashed, and rendered for a cluster into objects
    the API server accepts (kubernetes-validate --strict)."""
    spec_hash(api)
    owner = Owner(name=api.name, namespace="ml", uid=OWNER_UID)
    # SpecError is render's documented refusal: the autoscaler cannot work with this spec.
    with contextlib.suppress(SpecError):
        for obj in render(api, owner, OperatorSettings()):
            validate_manifest(obj, KUBERNETES_VERSIONS[-1])

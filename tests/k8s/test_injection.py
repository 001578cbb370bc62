"""Values that reach manifests: refused by the spec with one line naming the field, the value and
the fix, or rendered inertly (valid under kubernetes-validate --strict, no field added, the
value read back exactly)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cortex.errors import SpecError
from cortex.k8s import SPEC_ENV
from tests.k8s.conftest import (
    KUBERNETES_VERSIONS,
    ROUTINGS,
    by_kind,
    container,
    make_api,
    render_api,
    validate_manifest,
)

REFUSED: list[tuple[dict[str, Any], str]] = [
    (
        {"predictor": {"image": "repo/api:1\nimagePullPolicy: Never"}},
        "predictor.image 'repo/api:1\\nimagePullPolicy: Never' is not an image reference",
    ),
    ({"predictor": {"image": "repo/api:1 --privileged"}}, "predictor.image 'repo/api:1 --pr"),
    ({"predictor": {"image": "Repo/API:1"}}, "is not an image reference such as"),
    ({"predictor": {"image": "repo/api:" + "t" * 200}}, "is not an image reference"),
    (
        {"project": {"configMap": "../../etc/passwd"}},
        "project.configMap '../../etc/passwd' must be the name of a ConfigMap",
    ),
    ({"project": {"sha256": "abc\n"}}, "project.sha256 'abc\\n' must be a SHA-256 digest"),
    ({"predictor": {"env": {"A=B": "x"}}}, "predictor.env key 'A=B' is not a valid variable name"),
    ({"predictor": {"env": {"1ST": "x"}}}, "predictor.env key '1ST' is not a valid variable name"),
    ({"predictor": {"env": {"A B": "x"}}}, "predictor.env key 'A B' is not a valid variable name"),
    ({"predictor": {"env": {"A": "x\x00y"}}}, "predictor.env 'A' holds a NUL character"),
    (
        {"predictor": {"env_refs": {"T": {"secret": "s/../x", "key": "k"}}}},
        "predictor.env_refs.T.secret 's/../x' must be the name of a Secret",
    ),
    (
        {"predictor": {"env_refs": {"T": {"secret": "s", "key": "../k"}}}},
        "predictor.env_refs.T.key '../k' must be a data key",
    ),
    (
        {"predictor": {"service_account": "default\nautomount: true"}},
        "predictor.service_account 'default\\nautomount: true' must be the name of a "
        "ServiceAccount",
    ),
    ({"networking": {"hostname": "a.example.com\nx"}}, "networking.hostname 'a.example.com\\nx'"),
    ({"networking": {"endpoint": "//x"}}, "networking.endpoint '//x' must not contain an empty"),
    ({"networking": {"endpoint": "/a/../b"}}, "networking.endpoint '/a/../b' must not contain"),
    ({"networking": {"endpoint": "/a b"}}, "networking.endpoint '/a b' must start with /"),
    ({"compute": {"mem": "1Gi\nx"}}, "compute.mem '1Gi\\nx' is not a Kubernetes quantity"),
    ({"compute": {"gpu": 2**40}}, "compute.gpu 1099511627776 must be between 0 and 2147483647"),
    (
        {"autoscaling": {"max_replicas": 2**31}},
        "autoscaling.max_replicas 2147483648 must be between 1 and 2147483647",
    ),
    (
        {"update_strategy": {"max_surge": "99999999999%"}},
        "update_strategy.max_surge '99999999999%' must be an integer >= 0 or a percentage",
    ),
]


@pytest.mark.parametrize(("sections", "message"), REFUSED, ids=[m[:40] for _, m in REFUSED])
def test_a_value_kubernetes_would_refuse_is_refused_by_the_spec(
    sections: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        make_api(**sections)

    text = str(caught.value)
    assert text.startswith("api 'iris': ") and message in text
    assert "\n" not in text


HOSTILE_TEXT = [
    "line one\nkind: Secret\nmetadata: {name: x}",
    '", "name": "INJECTED", "value": "1',
    "$(HOME) $$(HOME) $",
    "--- !!python/object:os.system\n...",
    "\u202eevil\u200b\x1b[31m",
    "x" * 10_000,
]


@pytest.mark.parametrize("text", HOSTILE_TEXT, ids=range(len(HOSTILE_TEXT)))
@pytest.mark.parametrize("routing", sorted(ROUTINGS))
def test_hostile_text_in_accepted_fields_renders_inertly(text: str, routing: str) -> None:
    api = make_api(
        predictor={
            "env": {"NOTE": text, "OTHER": "1"},
            "config": {"note": text, text[:50]: [text]},
            "path": "odd name.py",
        },
        networking={"hostname": "api.example.com", "endpoint": "/v1/iris"},
    )

    objects = render_api(api, ROUTINGS[routing])

    for obj in objects:
        for version in KUBERNETES_VERSIONS:
            validate_manifest(obj, version)
    env = container(by_kind(objects)["Deployment"])["env"]
    scratch = {
        "HOME",
        "TMPDIR",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONPATH",
    }  # the pod's own, for its read-only root
    assert [item["name"] for item in env if item["name"] not in scratch] == [
        SPEC_ENV,
        "NOTE",
        "OTHER",
    ]
    values = {item["name"]: item["value"].replace("$$", "$") for item in env}
    assert values["NOTE"] == text and values["OTHER"] == "1"
    assert json.loads(values[SPEC_ENV])["predictor"]["config"] == {"note": text, text[:50]: [text]}

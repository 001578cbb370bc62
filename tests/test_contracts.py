"""The shared contracts: the status file round-trips, the runtime command line is built one way."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from cortex import contracts
from cortex.contracts import Flag, RuntimeArgs, RuntimeState, RuntimeStatus


def test_status_record_round_trips_with_its_cause() -> None:
    status = RuntimeStatus(
        pid=12, port=40123, state=RuntimeState.FAILED, spec_hash="abc", cause="boom", updated=1.5
    )
    assert RuntimeStatus.from_json(status.to_json()) == status


def test_status_record_from_garbage_is_none() -> None:
    assert RuntimeStatus.from_json("{half") is None
    assert RuntimeStatus.from_json('{"pid": 1}') is None
    assert RuntimeStatus.from_json('["not", "a", "record"]') is None
    unknown_state = '{"pid":1,"port":2,"state":"dancing","spec_hash":"x","updated":0}'
    assert RuntimeStatus.from_json(unknown_state) is None


def test_runtime_command_leaves_defaults_out() -> None:
    assert contracts.runtime_command(RuntimeArgs(), python="py") == ["py", "-m", "cortex.runtime"]


def test_runtime_command_spells_every_flag() -> None:
    args = RuntimeArgs(
        spec="s.yaml",
        spec_env="VAR",
        api="a",
        project_dir="/p",
        host="h",
        port=0,
        fd=3,
        max_body_bytes=10,
        max_header_bytes=11,
        max_headers=12,
        max_url_bytes=13,
        header_timeout=1.5,
        keep_alive_timeout=2.5,
        max_connections=14,
        body_timeout=2.5,
        access_log=True,
        drain_grace=1.5,
        graceful_timeout=3,
        status_file="st.json",
        any_path=True,
    )
    argv = args.argv()
    assert all(type(item) is str for item in argv)
    assert argv[argv.index("--port") + 1] == "0"
    assert {item for item in argv if item.startswith("--")} == {flag.value for flag in Flag}


# Words too common to grep for: "error" is also a JSON key and a log level, "ready" and "failed"
# also name the CLI's rollout outcomes, "cortex.runtime" is also the runtime's logger. The
# distinctive words stand for their enums.
# Other groups' versions are spelled like ours (KEDA's keda.sh/v1alpha1): the API_VERSION and
# the GROUP prefix still catch our own.
_TOO_COMMON = {"error", "ready", "failed", contracts.RUNTIME_MODULE, contracts.VERSION}
_CORTEX = Path(__file__).resolve().parent.parent / "cortex"


def _contract_words() -> dict[str, str]:
    words = {
        contracts.GROUP: "GROUP",
        contracts.VERSION: "VERSION",
        contracts.API_VERSION: "API_VERSION",
        contracts.KIND: "KIND",
        contracts.PLURAL: "PLURAL",
        contracts.SINGULAR: "SINGULAR",
        contracts.CRD_NAME: "CRD_NAME",
        contracts.LABEL_API_NAME: "LABEL_API_NAME",
        contracts.LABEL_API_KIND: "LABEL_API_KIND",
        contracts.ANNOTATION_SPEC_HASH: "ANNOTATION_SPEC_HASH",
        **{name: "SHORT_NAMES" for name in contracts.SHORT_NAMES},
    }
    for enum in (contracts.Metric, contracts.Flag, contracts.APIState, contracts.RuntimeState):
        words.update({member.value: f"{enum.__name__}.{member.name}" for member in enum})
    return {word: where for word, where in words.items() if word not in _TOO_COMMON}


def _string_literals(tree: ast.AST) -> Iterator[ast.Constant]:
    """Every string constant but docstrings, ``__all__`` and ``Literal[...]`` types (which
    cannot name a constant), f-string parts included."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skipped.add(id(body[0].value))
        if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("Literal"):
            skipped.update(id(inner) for inner in ast.walk(node.slice))
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__all__":
            skipped.update(id(inner) for inner in ast.walk(node.value))  # class names
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in skipped
        ):
            yield node


def test_no_contract_word_is_spelled_outside_contracts() -> None:
    words = _contract_words()
    found = []
    for path in sorted(_CORTEX.rglob("*.py")):
        if path.name == "contracts.py" and path.parent == _CORTEX:
            continue
        for node in _string_literals(ast.parse(path.read_text(), str(path))):
            # The group also prefixes label, annotation and finalizer names.
            word = contracts.GROUP if f"{contracts.GROUP}/" in node.value else node.value
            if word in words:
                where = f"{path.relative_to(_CORTEX.parent)}:{node.lineno}"
                found.append(f"{where}: {node.value!r} (use contracts.{words[word]})")
    assert found == [], "spelled outside cortex/contracts.py:\n" + "\n".join(found)


def test_the_grep_sees_a_second_definition(tmp_path: Path) -> None:
    source = (
        '"""live"""\nSTATE = "live"\nFLAG = f"{x}--port"\nK = Literal["live"]\n__all__ = ["live"]\n'
    )
    assert [node.value for node in _string_literals(ast.parse(source))] == ["live", "--port"]

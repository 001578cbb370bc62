"""Reads ``cortex.yaml`` text into plain data: a hardened YAML loader. Pure, no I/O.

A spec is JSON-shaped (mappings, lists, strings, numbers, booleans, null): it travels to the pods
as JSON. So the loader is PyYAML's safe loader, narrowed and bounded:

- a key repeated in one mapping is an error (YAML keeps the last one silently);
- tags that build other types (``!!binary``, ``!!set``, ``!!timestamp``, ``!!omap``,
  ``!!pairs``) are refused, and an unquoted date stays a string;
- strings must be valid Unicode (no lone surrogates from ``"\\ud800"`` escapes), integers at most
  :data:`MAX_DIGITS` digits (Python refuses to parse longer ones with a ``ValueError``);
- nesting is at most :data:`MAX_DEPTH` levels and the document, aliases expanded, at most
  :data:`MAX_NODES` nodes. A "billion laughs" document is a few dozen nodes as written and is
  refused before anything expands it; an alias that contains itself is refused too.

Every failure is a ``yaml.YAMLError`` with a mark (line and column) where one is known.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from cortex.spec import messages

__all__ = ["MAX_DEPTH", "MAX_DIGITS", "MAX_NODES", "read"]

MAX_DEPTH = 100
MAX_NODES = 1_000_000
MAX_DIGITS = 100
_TAG = "tag:yaml.org,2002:"
_NOT_JSON = ("binary", "set", "timestamp", "omap", "pairs")


_RESOLVERS = {
    first: [(tag, regex) for tag, regex in resolvers if tag != f"{_TAG}timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with the limits of the module docstring."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.yaml_implicit_resolvers = _RESOLVERS
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        # Composing recurses once per level: stop before Python's recursion limit does.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)


def _construct_mapping(loader: _Loader, node: MappingNode) -> dict[Any, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode) or key_node.tag.endswith(":merge"):
            continue
        key = loader.construct_object(key_node)
        if key in seen:
            raise ConstructorError(
                None, None, f"duplicate key {messages.show(key)}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


def _construct_str(loader: _Loader, node: ScalarNode) -> str:
    text: str = loader.construct_scalar(node)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        problem = "a string is not valid Unicode text (a lone surrogate escape)"
        raise ConstructorError(None, None, problem, node.start_mark) from None
    return text


def _construct_int(loader: _Loader, node: ScalarNode) -> int:
    digits = sum(char.isdigit() for char in str(node.value))
    if digits > MAX_DIGITS:
        raise ConstructorError(
            None, None, f"an integer of {digits} digits (at most {MAX_DIGITS})", node.start_mark
        )
    value: int = loader.construct_yaml_int(node)
    return value


def _refuse(loader: _Loader, node: Node) -> None:
    raise ConstructorError(
        None,
        None,
        f"tag {node.tag.replace(_TAG, '!!')} is not allowed: a spec holds mappings, lists, "
        "strings, numbers, booleans and null",
        node.start_mark,
    )


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(f"{_TAG}str", _construct_str)
_Loader.add_constructor(f"{_TAG}int", _construct_int)
for _name in _NOT_JSON:
    _Loader.add_constructor(f"{_TAG}{_name}", _refuse)


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: Node) -> None:
    """Refuse a document whose aliases expand past the limits, or refer to themselves.

    Each distinct node is visited once (aliases share nodes), without recursion, so checking a
    billion-laughs document costs what its text does.
    """
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, depth) once expanded
    open_: set[int] = set()  # nodes whose children are being expanded: the current path
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            counts = [done[id(child)] for child in _children(node)]
            size = 1 + sum(nodes for nodes, _ in counts)
            depth = 1 + max((levels for _, levels in counts), default=0)
            open_.discard(key)
            done[key] = (size, depth)
            if size > MAX_NODES or depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"aliases expand the document past {MAX_NODES} values or {MAX_DEPTH} levels",
                    node.start_mark,
                )
        elif key in open_:
            raise yaml.composer.ComposerError(
                None, None, "an alias refers to a value that contains it", node.start_mark
            )
        elif key not in done:
            open_.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node) if id(child) not in done)


def read(text: str) -> object:
    """The data of one YAML document; raises ``yaml.YAMLError`` (see the module docstring)."""
    return yaml.load(text, Loader=_Loader)

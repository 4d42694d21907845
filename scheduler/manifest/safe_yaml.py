"""YAML for manifests: ``yaml.SafeLoader`` with duplicate keys refused and aliases bounded.

Three things the stock safe loader lets through are refused here, each as a ``yaml.YAMLError``
with the line it happened on:

- a key written twice in one mapping (the stock loader silently keeps the last value, so a
  second ``budget_usd`` would quietly replace the first);
- aliases that expand the document far beyond what was written (the "billion laughs": nine
  lines of ``&a [*b, *b, ...]`` describe 10^9 nodes). Each alias adds the size of the node it
  names; once aliases have added more than :data:`ALIAS_FLOOR` nodes and more than
  :data:`ALIAS_RATIO` times the nodes actually written, loading stops, after a few thousand
  nodes of work rather than billions;
- nesting deeper than :data:`MAX_DEPTH` levels, counting what aliases bring in (the composer
  and everything after it recurse, so deep nesting would end in a RecursionError).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from scheduler.manifest.problems import shown

MAX_DEPTH = 32  # a manifest needs 4 or 5 levels
ALIAS_FLOOR = 10_000  # nodes aliases may always add
ALIAS_RATIO = 10  # ... and beyond that, this many times the nodes written out
MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(ConstructorError):
    """A mapping names the same key twice."""

    def __init__(self, key: Any, first: Any, again: Any, field: str | None) -> None:
        super().__init__(
            None,
            None,
            f"duplicate key {shown(key)} (first on line {first.line + 1}); "
            "a key may appear once in a mapping",
            again,
        )
        self.field = field


class ManifestLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, alias bombs and deep nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._open: list[list[int]] = []  # per node being composed: [size, tallest child]
        self._measured: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (size, height)
        self._written = 0  # nodes composed from the text
        self._aliased = 0  # nodes added by aliases

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            aliased = super().compose_node(parent, index)
            assert aliased is not None  # an alias always names a node
            return self._alias(aliased, event)
        if len(self._open) >= MAX_DEPTH:
            raise ComposerError(
                None, None, f"nesting is deeper than {MAX_DEPTH} levels", event.start_mark
            )
        self._open.append([1, 0])
        node = super().compose_node(parent, index)
        size, tallest = self._open.pop()
        self._written += 1
        if getattr(event, "anchor", None) is not None:
            self._measured[id(node)] = (size, tallest + 1)
        self._count(size, tallest + 1)
        return node

    def _alias(self, node: Node, event: Any) -> Node:
        measure = self._measured.get(id(node))
        if measure is None:  # the anchor is still open: the alias is inside its own anchor
            raise ComposerError(
                None, None, "an alias is used inside its own anchor", event.start_mark
            )
        size, height = measure
        if len(self._open) + height > MAX_DEPTH:
            raise ComposerError(
                None,
                None,
                f"alias *{event.anchor} nests the document deeper than {MAX_DEPTH} levels",
                event.start_mark,
            )
        self._aliased += size
        if self._aliased > max(ALIAS_FLOOR, ALIAS_RATIO * self._written):
            raise ComposerError(
                None,
                None,
                f"aliases expand the document to more than {self._aliased} nodes "
                f"({self._written} written); refused as an alias bomb",
                event.start_mark,
            )
        self._count(size, height)
        return node

    def _count(self, size: int, height: int) -> None:
        if self._open:
            parent = self._open[-1]
            parent[0] += size
            parent[1] = max(parent[1], height)

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node: MappingNode = super().compose_mapping_node(anchor)
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == MERGE_TAG:
                continue  # merge keys may be overridden; complex keys are the constructor's
            try:
                key = (key_node.tag, self.construct_object(key_node))
                first = seen.setdefault(key, key_node.start_mark)
            except (ConstructorError, TypeError, ValueError):
                continue
            if first is not key_node.start_mark:
                field = str(key[1]) if len(self._open) == 1 else None
                raise DuplicateKeyError(key[1], first, key_node.start_mark, field)
        return node


def load_yaml(text: str) -> Any:
    """The single document in ``text``; raises ``yaml.YAMLError`` (with a mark) on any problem."""
    loader = ManifestLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()

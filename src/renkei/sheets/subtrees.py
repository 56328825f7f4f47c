"""Parts of a sheet with a consent category of their own (`x-category` on a property), and JSON pointer
patterns over sheet data.

A patient's consent can exclude a category such as `acp` or `psychiatric` for an organisation while the
rest of a sheet is shared with it: the DNAR wish on the emergency sheet, the behavioural symptoms on the
admission sheet. The registry finds these sub-trees once per sheet version; readers withhold them.
Patterns are JSON pointers in which `*` stands for any index of a list.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Subtree:
    pattern: str
    category: str


def find(schema: dict[str, Any], resolver: Any) -> tuple[Subtree, ...]:
    """Every property of the schema (at any depth, `$ref`s followed) that declares an `x-category`."""
    return tuple(Subtree(pattern, value) for pattern, value in annotated(schema, resolver, "x-category"))


def annotated(schema: dict[str, Any], resolver: Any, keyword: str) -> tuple[tuple[str, str], ...]:
    """(pattern, value) of every property below the root that carries the string annotation `keyword`."""
    return tuple(_walk(schema, resolver, "", keyword, root=True))


def _walk(schema: Any, resolver: Any, pointer: str, keyword: str, *, root: bool = False
          ) -> Iterator[tuple[str, str]]:
    if not isinstance(schema, dict):
        return
    value = schema.get(keyword)
    if isinstance(value, str) and not root:
        yield pointer, value
    seen = 0
    while "$ref" in schema and seen < 20:
        seen += 1
        resolved = resolver.lookup(schema["$ref"])
        schema, resolver = resolved.contents, resolved.resolver
    for name, child in (schema.get("properties") or {}).items():
        yield from _walk(child, resolver, f"{pointer}/{escape(name)}", keyword)
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], resolver, f"{pointer}/*", keyword)


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _tokens(pointer: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.strip("/").split("/")] if pointer else []


def select(data: Any, pattern: str) -> list[tuple[str, Any]]:
    """(pointer, value) for every value a pattern like /contact_log/*/date names in the data."""
    found: list[tuple[str, Any]] = [("", data)]
    for token in _tokens(pattern):
        step: list[tuple[str, Any]] = []
        for path, node in found:
            if token == "*" and isinstance(node, list):
                step.extend((f"{path}/{i}", item) for i, item in enumerate(node))
            elif isinstance(node, dict) and token in node:
                step.append((f"{path}/{escape(token)}", node[token]))
        found = step
    return found


def matches(pointer: str, pattern: str) -> bool:
    """Whether a concrete pointer is the pattern's node or lies inside it."""
    have, want = _tokens(pointer), _tokens(pattern)
    return len(have) >= len(want) and all(w in ("*", h) for h, w in zip(have, want, strict=False))


def withhold(data: dict[str, Any], subtrees: Sequence[Subtree]) -> tuple[dict[str, Any], list[str]]:
    """A copy of the data without the given sub-trees, and their pointers: every pattern without `*` (listed
    whether or not it holds anything, so that the list says nothing about what was recorded) and every
    list item a `*` pattern matched."""
    if not subtrees:
        return data, []
    out = copy.deepcopy(data)
    pointers: list[str] = []
    for subtree in subtrees:
        found = select(out, subtree.pattern)
        for pointer, _ in reversed(found):
            _remove(out, pointer)
        if "*" in subtree.pattern:
            pointers += [pointer for pointer, _ in found]
        else:
            pointers.append(subtree.pattern)
    return out, sorted(set(pointers))


def supplied(data: Any, subtrees: Sequence[Subtree]) -> list[str]:
    """Pointers of the data that fall in one of the sub-trees."""
    return sorted({pointer for subtree in subtrees for pointer, _ in select(data, subtree.pattern)})


def carry(previous: dict[str, Any], into: dict[str, Any], subtrees: Sequence[Subtree]) -> dict[str, Any]:
    """`into` with the sub-trees of `previous` put back unchanged (`into` holds none of them)."""
    if not subtrees:
        return into
    out = copy.deepcopy(into)
    for subtree in subtrees:
        for pointer, value in select(previous, subtree.pattern):
            _put(out, previous, pointer, copy.deepcopy(value))
    return out


def _remove(data: Any, pointer: str) -> None:
    *parents, last = _tokens(pointer)
    node = data
    for token in parents:
        node = node[int(token)] if isinstance(node, list) else node[token]
    if isinstance(node, list):
        node.pop(int(last))
    else:
        node.pop(last, None)


def _put(data: dict[str, Any], previous: dict[str, Any], pointer: str, value: Any) -> None:
    """Set the value at the pointer, creating the parent objects (as they were in `previous`) on the way."""
    *parents, last = _tokens(pointer)
    node: Any = data
    source: Any = previous
    for token in parents:
        source = source[int(token)] if isinstance(source, list) else source[token]
        if isinstance(node, list):
            # A list item inside a carried sub-tree's parent: only whole items are carried, so it exists.
            node = node[int(token)]
        else:
            node = node.setdefault(token, [] if isinstance(source, list) else {})
    if isinstance(node, list):
        node.insert(int(last), value)
    else:
        node[last] = value

"""Chained references: an item's output used as a reference image of other items of the manifest.

A reference source ``item:KEY`` names the image of variant 1 of the row whose key is ``KEY``;
``item:KEY#N`` names its variant ``N``. Such references are resolved here, after every row is
rendered: a key or variant no item produces, or a cycle, is a problem with its place (the file,
row and field of the reference). The image itself exists only once that item succeeds, so the
dependent item's fingerprint is provisional (it names the dependency, not its digest) until the
scheduler releases it with the real digest (scheduler/chains.py).
"""

from __future__ import annotations

from scheduler.manifest.plan import ItemSpec, ResolvedRef
from scheduler.manifest.problems import Problems, shown

PREFIX = "item:"
Node = tuple[str, int]  # (key, variant)


def is_chained(source: str) -> bool:
    return source.startswith(PREFIX)


def chained_ref(source: str, place: tuple[str, int | None, str]) -> ResolvedRef | str:
    """The unresolved reference ``item:KEY[#N]``, or why it cannot be one."""
    target = source[len(PREFIX) :].strip()
    key, hash_, number = target.rpartition("#")
    variant = 1
    if hash_ and number.isdigit() and key.strip():
        key, variant = key.strip(), int(number)
    else:
        key = target
    if not key:
        return f"the reference {shown(source)} names no key; write item:KEY or item:KEY#VARIANT"
    if variant < 1:
        return f"the reference {shown(source)} names variant {variant}; variants start at 1"
    return ResolvedRef(
        digest="",
        mime="",
        size=0,
        source=source,
        key=None,
        uri=None,
        depends_on=(key, variant),
        place=place,
    )


def provisional_digest(ref: ResolvedRef) -> str:
    """What a chained reference contributes to a fingerprint before its image exists."""
    assert ref.depends_on is not None
    key, variant = ref.depends_on
    return f"after:{key}#{variant}"


def check_chains(items: list[ItemSpec], problems: Problems) -> None:
    """Record a problem for each chained reference to no item, and for each cycle."""
    nodes: dict[Node, ItemSpec] = {(item.key, item.variant): item for item in items}
    variants: dict[str, list[int]] = {}
    for node in nodes:
        variants.setdefault(node[0], []).append(node[1])
    edges: dict[Node, list[tuple[Node, ResolvedRef]]] = {}
    for item in items:
        for ref in item.refs:
            if ref.depends_on is None:
                continue
            if ref.depends_on not in nodes:
                _problem(problems, ref, _missing(ref.depends_on, variants))
                continue
            edges.setdefault((item.key, item.variant), []).append((ref.depends_on, ref))
    _find_cycles(edges, problems)


def _missing(target: Node, variants: dict[str, list[int]]) -> str:
    key, variant = target
    if key not in variants:
        return f"no item of this manifest has the key {shown(key)} (item:{key} names its image)"
    have = ", ".join(str(v) for v in sorted(variants[key]))
    return f"the row {shown(key)} has no variant {variant} (it has variants {have})"


def _find_cycles(edges: dict[Node, list[tuple[Node, ResolvedRef]]], problems: Problems) -> None:
    """Iterative depth-first search; each back edge is a cycle, reported at that reference."""
    state: dict[Node, int] = {}  # 1 on the current path, 2 done
    for start in edges:
        if start in state:
            continue
        path: list[Node] = [start]
        stack = [iter(edges.get(start, ()))]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            target, ref = step
            seen = state.get(target)
            if seen == 1:
                loop = [*path[path.index(target) :], target]
                shown_loop = " -> ".join(f"{key}#{variant}" for key, variant in loop)
                _problem(problems, ref, f"chained references form a cycle: {shown_loop}")
            elif seen is None:
                state[target] = 1
                path.append(target)
                stack.append(iter(edges.get(target, ())))


def _problem(problems: Problems, ref: ResolvedRef, message: str) -> None:
    assert ref.place is not None
    file, row, fld = ref.place
    problems.add(file, f"{shown(ref.source)}: {message}", row=row, field=fld)

"""Manifests (MANIFEST.md): parse, validate, render and resolve references into a :class:`Plan`.

:func:`load_plan` is the entry point. It writes nothing; on any problem it raises
:class:`~stencil.errors.ManifestError` carrying all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scheduler.manifest.builder import Builder
from scheduler.manifest.chains import check_chains
from scheduler.manifest.limits import storable
from scheduler.manifest.plan import DEFAULT_PRIORITY, ItemSpec, Plan, ResolvedRef, SubmitOptions
from scheduler.manifest.problems import Problems
from scheduler.manifest.recipe import csv_recipe, yaml_recipe
from scheduler.manifest.refs import RefResolver
from stencil.settings import Settings

YAML_SUFFIXES = (".yaml", ".yml")


def load_plan(
    path: Path,
    *,
    options: SubmitOptions,
    settings: Settings,
    batch_id: str,
    s3_reader: Callable[[str], bytes] | None = None,
    https_fetcher: Callable[[str], bytes] | None = None,
) -> Plan:
    """Check a YAML or CSV manifest (chosen by extension) and render every item.

    ``s3_reader`` and ``https_fetcher`` read s3:// and https:// references (None: such
    references are an error). Each distinct reference is read once.
    """
    problems = Problems()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        recipe = yaml_recipe(path, options, settings, problems)
    elif suffix == ".csv":
        recipe = csv_recipe(path, options, settings, problems)
    else:
        problems.add(str(path), "a manifest must end in .yaml, .yml or .csv")
        problems.raise_if_any()
        raise AssertionError("unreachable")
    resolver = RefResolver(
        recipe.root, recipe.spec, s3_reader=s3_reader, https_fetcher=https_fetcher
    )
    builder = Builder(recipe, batch_id=batch_id, resolver=resolver, problems=problems)
    count = 0
    for count, row in enumerate(recipe.rows, start=1):
        builder.add(row, count)
    if count == 0 and not problems.items:
        problems.add(recipe.file, "has no rows", field="rows")
    check_chains(builder.items, problems)
    problems.raise_if_any()
    warnings: list[str] = []
    used = {ref.digest for item in builder.items for ref in item.refs if ref.key}
    return Plan(
        batch_id=batch_id,
        name=recipe.name,
        provider=recipe.provider,
        model=recipe.model,
        priority=recipe.priority,
        budget_micros=recipe.budget_micros,
        source=storable(str(path)),
        items=builder.items,
        ref_data={digest: data for digest, data in resolver.data.items() if digest in used},
        warnings=warnings,
        estimated_micros=sum(item.estimate_micros for item in builder.items),
        reuse_scope=recipe.reuse_scope,
    )


__all__ = [
    "DEFAULT_PRIORITY",
    "ItemSpec",
    "Plan",
    "ResolvedRef",
    "SubmitOptions",
    "load_plan",
]

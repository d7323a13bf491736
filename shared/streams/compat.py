"""How a stream's declaration may evolve: backward compatibility, as a
schema registry checks it.

A new version must accept every record the old one accepted and keep the
meaning of every column models were trained on. So these are refused, each
problem naming the path at fault:

- a field removed, retyped, made required, or its bounds, categories or
  length narrowed; a required field added;
- the key changed;
- a derived field, time part or rolling statistic removed or redefined;
- a task removed, or its kind, target or features changed.

Anything else is a compatible new version: an optional field, a derived
field, a time part, a rolling statistic or a task added; bounds widened; a
category added; constants, tables, descriptions, examples, allowed
algorithms and metrics changed.
"""

from __future__ import annotations

from shared.streams.declaration import FieldSpec, Problem, StreamSpec


def incompatibilities(old: StreamSpec, new: StreamSpec) -> list[Problem]:
    problems: list[Problem] = []

    def refuse(path: str, reason: str) -> None:
        problems.append(Problem(path=path, reason=reason))

    new_fields = {f.name: (i, f) for i, f in enumerate(new.fields)}
    for field in old.fields:
        found = new_fields.get(field.name)
        if found is None:
            refuse("fields", f"field {field.name!r} cannot be removed (records and models use it)")
            continue
        index, changed = found
        _compare_field(field, changed, f"fields[{index}]", refuse)
    old_names = {f.name for f in old.fields}
    for index, field in enumerate(new.fields):
        if field.name not in old_names and field.required:
            refuse(f"fields[{index}].required", f"new field {field.name!r} must be optional: records already sent lack it")
    if old.key != new.key:
        refuse("key", f"the key cannot change ({old.key!r} -> {new.key!r}): order holds per key")

    for kind, olds, news in (
        ("derived field", {d.name: d for d in old.derived}, {d.name: d for d in new.derived}),
        ("rolling statistic", {r.name: r for r in old.rolling}, {r.name: r for r in new.rolling}),
    ):
        for name, spec in olds.items():
            if name not in news:
                refuse(_path(new, name), f"{kind} {name!r} cannot be removed (models may read it)")
            elif news[name].model_dump(exclude={"description", "unit"}) != spec.model_dump(exclude={"description", "unit"}):
                refuse(_path(new, name), f"{kind} {name!r} cannot be redefined; declare a new name instead")
    old_parts = {p.column(part): p.timezone for p in old.time_parts for part in p.parts}
    new_parts = {p.column(part): p.timezone for p in new.time_parts for part in p.parts}
    for column, zone in old_parts.items():
        if column not in new_parts:
            refuse("time_parts", f"time part {column!r} cannot be removed (models may read it)")
        elif new_parts[column] != zone:
            refuse("time_parts", f"time part {column!r} cannot change its time zone ({zone} -> {new_parts[column]})")

    new_tasks = {t.name: (i, t) for i, t in enumerate(new.tasks)}
    for task in old.tasks:
        found = new_tasks.get(task.name)
        if found is None:
            refuse("tasks", f"task {task.name!r} cannot be removed (it has models and predictions)")
            continue
        index, changed = found
        for attribute in ("kind", "target", "features"):
            if getattr(task, attribute) != getattr(changed, attribute):
                refuse(f"tasks[{index}].{attribute}",
                       f"task {task.name!r} cannot change its {attribute}; declare a new task instead")
    return problems


def _path(spec: StreamSpec, name: str) -> str:
    for i, derived in enumerate(spec.derived):
        if derived.name == name:
            return f"derived[{i}]"
    for i, rolling in enumerate(spec.rolling):
        if rolling.name == name:
            return f"rolling[{i}]"
    return "derived" if name else ""


def _compare_field(old: FieldSpec, new: FieldSpec, path: str, refuse) -> None:  # noqa: ANN001
    name = old.name
    if old.type != new.type:
        refuse(f"{path}.type", f"field {name!r} cannot change type ({old.type.value} -> {new.type.value})")
        return
    if new.required and not old.required:
        refuse(f"{path}.required", f"field {name!r} cannot become required: records already sent may lack it")
    if new.minimum is not None and (old.minimum is None or new.minimum > old.minimum):
        refuse(f"{path}.minimum", f"field {name!r}'s minimum cannot rise (records already accepted may be below it)")
    if new.maximum is not None and (old.maximum is None or new.maximum < old.maximum):
        refuse(f"{path}.maximum", f"field {name!r}'s maximum cannot fall (records already accepted may be above it)")
    if new.max_length < old.max_length:
        refuse(f"{path}.max_length", f"field {name!r}'s max_length cannot shrink")
    removed = set(old.categories or ()) - set(new.categories or ())
    if removed and not new.open:
        refuse(f"{path}.categories", f"field {name!r} cannot drop categories {sorted(removed)}")
    if old.open and not new.open:
        refuse(f"{path}.open", f"field {name!r} cannot become a closed category")

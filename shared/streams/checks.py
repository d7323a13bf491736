"""Cross-reference checks of a declaration whose shape pydantic accepted.

Each problem carries the JSON path of the value at fault and a reason a
person can act on; all of them are collected, not just the first.
"""

from __future__ import annotations

from collections import Counter
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.expressions import Expression, ExpressionError, parse
from shared.streams.declaration import (
    ALGORITHMS_BY_KIND,
    MAX_BUCKETS,
    MAX_CATEGORIES,
    MAX_DERIVED,
    MAX_FIELDS,
    MAX_ROLLING,
    MAX_TASKS,
    METRICS_BY_KIND,
    FieldType,
    Problem,
    StreamSpec,
    TaskKind,
)
from shared.streams.order import ComputeCycle, compute_order


class _Problems(list[Problem]):
    def add(self, path: str, reason: str) -> None:
        self.append(Problem(path=path, reason=reason))


def check_declaration(spec: StreamSpec) -> list[Problem]:
    problems = _Problems()
    _check_fields(spec, problems)
    _check_names(spec, problems)
    expressions = _check_derived(spec, problems)
    _check_time_parts(spec, problems)
    _check_rolling(spec, problems)
    if not problems:
        try:
            compute_order(spec, expressions)
        except ComputeCycle as error:
            problems.add(error.path, str(error))
    _check_stream_lists(spec, problems)
    _check_tasks(spec, problems)
    _check_simulation(spec, problems)
    return problems


def _check_fields(spec: StreamSpec, problems: _Problems) -> None:
    if len(spec.fields) > MAX_FIELDS:
        problems.add("fields", f"{len(spec.fields)} fields; at most {MAX_FIELDS}")
    for i, field in enumerate(spec.fields):
        path = f"fields[{i}]"
        if not field.numeric and (field.minimum is not None or field.maximum is not None):
            problems.add(f"{path}.minimum", f"bounds apply to int and float fields, not {field.type.value}")
        if field.minimum is not None and field.maximum is not None and field.minimum > field.maximum:
            problems.add(f"{path}.maximum", f"maximum {field.maximum:g} is below minimum {field.minimum:g}")
        if field.type is FieldType.CATEGORY:
            values = field.categories or ()
            if not values and not field.open:
                problems.add(f"{path}.categories", "a closed category field needs its values (or set open: true)")
            if len(values) > MAX_CATEGORIES:
                problems.add(f"{path}.categories", f"{len(values)} categories; at most {MAX_CATEGORIES}")
            for value, count in Counter(values).items():
                if count > 1:
                    problems.add(f"{path}.categories", f"category {value!r} is listed {count} times")
            for j, value in enumerate(values):
                if not value.strip() or len(value) > field.max_length:
                    problems.add(f"{path}.categories[{j}]", f"a category must be 1 to {field.max_length} characters")
        elif field.categories is not None or field.open:
            problems.add(f"{path}.categories", f"categories apply to category fields, not {field.type.value}")
    if spec.key is not None:
        try:
            key = spec.field(spec.key)
        except KeyError:
            problems.add("key", f"{spec.key!r} is not a field of the stream")
        else:
            if key.type not in (FieldType.STR, FieldType.INT, FieldType.CATEGORY):
                problems.add("key", f"the key field must be str, int or category, not {key.type.value}")
            if not key.required:
                problems.add("key", f"the key field {spec.key!r} must be required")


def _check_names(spec: StreamSpec, problems: _Problems) -> None:
    """Every column, constant and table has a name of its own."""
    seen: dict[str, str] = {}

    def claim(name: str, path: str) -> None:
        if name in seen:
            problems.add(path, f"name {name!r} is already used by {seen[name]}")
        else:
            seen[name] = path

    for i, field in enumerate(spec.fields):
        claim(field.name, f"fields[{i}].name")
    for i, parts in enumerate(spec.time_parts):
        for part in parts.parts:
            claim(parts.column(part), f"time_parts[{i}].parts")
    for i, derived in enumerate(spec.derived):
        claim(derived.name, f"derived[{i}].name")
    for i, rolling in enumerate(spec.rolling):
        claim(rolling.name, f"rolling[{i}].name")
    for name in spec.constants:
        claim(name, f"constants.{name}")
    for name in spec.tables:
        claim(name, f"tables.{name}")


def _check_derived(spec: StreamSpec, problems: _Problems) -> dict[str, Expression]:
    if len(spec.derived) > MAX_DERIVED:
        problems.add("derived", f"{len(spec.derived)} derived fields; at most {MAX_DERIVED}")
    numeric = [name for name, kind in spec.columns.items() if kind == "number"]
    keys = [f.name for f in spec.fields if f.type in (FieldType.CATEGORY, FieldType.STR, FieldType.BOOL)]
    expressions: dict[str, Expression] = {}
    for i, derived in enumerate(spec.derived):
        path = f"derived[{i}].expression"
        try:
            expression = parse(derived.expression)
            expression.check(columns=numeric, constants=spec.constants, tables=spec.tables, key_columns=keys)
        except ExpressionError as error:
            problems.add(path, str(error))
            continue
        if derived.name in expression.names():
            problems.add(path, f"derived field {derived.name!r} refers to itself")
            continue
        expressions[derived.name] = expression
    for name, table in spec.tables.items():
        if not table:
            problems.add(f"tables.{name}", "a table needs at least one entry")
    return expressions


def _check_time_parts(spec: StreamSpec, problems: _Problems) -> None:
    for i, parts in enumerate(spec.time_parts):
        try:
            field = spec.field(parts.field)
        except KeyError:
            problems.add(f"time_parts[{i}].field", f"{parts.field!r} is not a field of the stream")
        else:
            if field.type is not FieldType.DATETIME:
                problems.add(f"time_parts[{i}].field", f"{parts.field!r} is {field.type.value}, not datetime")
        try:
            ZoneInfo(parts.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.add(f"time_parts[{i}].timezone", f"unknown time zone {parts.timezone!r}")


def _check_rolling(spec: StreamSpec, problems: _Problems) -> None:
    if len(spec.rolling) > MAX_ROLLING:
        problems.add("rolling", f"{len(spec.rolling)} rolling features; at most {MAX_ROLLING}")
    derived = {d.name for d in spec.derived}
    for i, rolling in enumerate(spec.rolling):
        path = f"rolling[{i}]"
        kind = spec.columns.get(rolling.value)
        if kind is None:
            problems.add(f"{path}.value", f"{rolling.value!r} is not a column of the stream")
        elif kind != "number" or (rolling.value not in derived and rolling.value not in spec.field_names):
            problems.add(f"{path}.value", f"{rolling.value!r} must be a numeric field or a derived field")
        key = rolling.key or spec.key
        if key is None:
            problems.add(f"{path}.key", "name the field grouping the statistic (the stream has no key)")
        elif key not in spec.field_names:
            problems.add(f"{path}.key", f"{key!r} is not a field of the stream")
        time = rolling.time or spec.time_field
        if time is None:
            problems.add(f"{path}.time", "name the datetime field (the stream has none or several)")
        elif time not in spec.field_names or spec.field(time).type is not FieldType.DATETIME:
            problems.add(f"{path}.time", f"{time!r} is not a datetime field of the stream")
        if rolling.window % rolling.bucket:
            problems.add(f"{path}.window", f"window ({rolling.window} s) is not a multiple of bucket ({rolling.bucket} s)")
        elif rolling.window // rolling.bucket > MAX_BUCKETS:
            problems.add(f"{path}.window", f"{rolling.window // rolling.bucket} buckets; at most {MAX_BUCKETS}")


def _check_stream_lists(spec: StreamSpec, problems: _Problems) -> None:
    for i, name in enumerate(spec.features or ()):
        if spec.columns.get(name) != "number":
            problems.add(f"features[{i}]", f"{name!r} is not a numeric column of the stream")
    for i, name in enumerate(spec.context):
        if name not in spec.field_names:
            problems.add(f"context[{i}]", f"{name!r} is not a field of the stream")
    entity = spec.entity
    if entity is None:
        return
    for role in ("latitude", "longitude"):
        name = getattr(entity, role)
        if name is not None and spec.columns.get(name) != "number":
            problems.add(f"entity.{role}", f"{name!r} is not a numeric field of the stream")
    for role in ("area", "kind"):
        name = getattr(entity, role)
        if name is not None and spec.columns.get(name) not in ("text", "category"):
            problems.add(f"entity.{role}", f"{name!r} is not a text or category field of the stream")
        elif name is not None and name not in spec.context:
            problems.add(f"entity.{role}", f"{name!r} must also be listed in context (alerts and state read it there)")
    for i, name in enumerate(entity.values):
        if spec.columns.get(name) != "number":
            problems.add(f"entity.values[{i}]", f"{name!r} is not a numeric column of the stream")
    if entity.history is not None:
        for role in ("value", "deviation"):
            name = getattr(entity.history, role)
            if name is not None and spec.columns.get(name) != "number":
                problems.add(f"entity.history.{role}", f"{name!r} is not a numeric column of the stream")
    if spec.key is None:
        problems.add("entity", "an entity stream needs a key field naming each thing")


def _check_tasks(spec: StreamSpec, problems: _Problems) -> None:
    if len(spec.tasks) > MAX_TASKS:
        problems.add("tasks", f"{len(spec.tasks)} tasks; at most {MAX_TASKS}")
    names = Counter(task.name for task in spec.tasks)
    for i, task in enumerate(spec.tasks):
        path = f"tasks[{i}]"
        if names[task.name] > 1:
            problems.add(f"{path}.name", f"task name {task.name!r} is used {names[task.name]} times")
        for j, name in enumerate(task.features):
            kind = spec.columns.get(name)
            if kind is None:
                problems.add(f"{path}.features[{j}]", f"{name!r} is not a column of the stream")
            elif kind not in ("number", "category"):
                problems.add(f"{path}.features[{j}]", f"{name!r} is {kind}; model inputs are numbers or categories")
        for name, count in Counter(task.features).items():
            if count > 1:
                problems.add(f"{path}.features", f"{name!r} is listed {count} times")
        for j, name in enumerate(task.optional_features):
            if name not in task.features:
                problems.add(f"{path}.optional_features[{j}]", f"{name!r} is not one of the task's features")
        if task.optional_features and len(task.optional_features) == len(task.features):
            problems.add(f"{path}.optional_features", "at least one feature must be required")
        _check_target(spec, task, path, problems)
        allowed = ALGORITHMS_BY_KIND[task.kind]
        for j, algorithm in enumerate(task.algorithms or ()):
            if algorithm not in allowed:
                problems.add(f"{path}.algorithms[{j}]", f"{algorithm.value} cannot learn a {task.kind.value} task "
                             f"(use {', '.join(a.value for a in allowed)})")
        if task.default_algorithm is not None and task.default_algorithm not in task.allowed_algorithms:
            problems.add(f"{path}.default_algorithm", f"{task.default_algorithm.value} is not among the allowed algorithms")
        if task.metric is not None and task.metric not in METRICS_BY_KIND[task.kind]:
            problems.add(f"{path}.metric", f"{task.metric!r} is no {task.kind.value} metric "
                         f"(use {', '.join(METRICS_BY_KIND[task.kind])})")
        if task.order_by is not None and (task.kind is not TaskKind.CLUSTERING or task.order_by not in task.features):
            problems.add(f"{path}.order_by", "order_by names one of a clustering task's features")
        if task.kind is TaskKind.CLUSTERING and task.optional_features:
            problems.add(f"{path}.optional_features", "a clustering task's features are all required")
        if task.kind is not TaskKind.CLASSIFICATION and (task.positive_class is not None or task.alert):
            problems.add(f"{path}.kind", "positive_class and alert apply to classification tasks")


def _check_target(spec: StreamSpec, task, path: str, problems: _Problems) -> None:  # noqa: ANN001
    if task.kind is TaskKind.CLUSTERING:
        if task.target is not None:
            problems.add(f"{path}.target", "a clustering task learns no target")
        return
    if task.target is None:
        problems.add(f"{path}.target", f"a {task.kind.value} task needs a target")
        return
    kind = spec.columns.get(task.target)
    if kind is None:
        problems.add(f"{path}.target", f"{task.target!r} is not a column of the stream")
        return
    if task.target in task.features:
        problems.add(f"{path}.target", f"{task.target!r} cannot be both the target and a feature")
    if task.kind is TaskKind.REGRESSION and kind != "number":
        problems.add(f"{path}.target", f"a regression target must be numeric; {task.target!r} is {kind}")
    if task.kind is TaskKind.CLASSIFICATION:
        if task.target not in spec.field_names:
            problems.add(f"{path}.target", f"a classification target must be a field; {task.target!r} is computed")
        elif spec.field(task.target).type in (FieldType.FLOAT, FieldType.DATETIME):
            problems.add(f"{path}.target", f"a classification target must be bool, int, str or category, "
                         f"not {spec.field(task.target).type.value}")


def _check_simulation(spec: StreamSpec, problems: _Problems) -> None:
    """Each role fills a field of its own and every required field is filled.
    Whether the simulator has those roles is the generator's to say (it owns
    the simulators)."""
    if spec.simulation is None:
        return
    bound: dict[str, str] = {}
    for role, name in spec.simulation.bind.items():
        path = f"simulation.bind.{role}"
        if name not in spec.field_names:
            problems.add(path, f"{name!r} is not a field of the stream")
        elif name in bound:
            problems.add(path, f"field {name!r} is already filled by role {bound[name]!r}")
        else:
            bound[name] = role
    for i, field in enumerate(spec.fields):
        if field.required and field.name not in bound:
            problems.add("simulation.bind", f"required field {field.name!r} (fields[{i}]) is filled by no role: "
                         "every simulated record would be rejected")

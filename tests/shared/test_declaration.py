"""Stream declarations: the format, every refusal with its JSON path, evolution rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from shared.streams import DeclarationInvalid, builtin_streams, parse_declaration, read_declaration_text
from shared.streams.catalog import Catalog, Declared, UnknownStream
from shared.streams.compat import incompatibilities
from shared.streams.declaration import MAX_CATEGORIES, MAX_FIELDS, declaration_json_schema
from shared.streams.files import BUILTIN_DIR

SCHEMA_FILE = BUILTIN_DIR.parent / "declaration.schema.json"

HOUSES: dict[str, Any] = {
    "name": "houses",
    "key": "house_id",
    "fields": [
        {"name": "house_id", "type": "str"},
        {"name": "area_m2", "type": "float", "minimum": 10, "maximum": 2000},
        {"name": "rooms", "type": "int", "minimum": 1, "maximum": 50},
        {"name": "district", "type": "category", "categories": ["north", "south", "centre"]},
        {"name": "listed_at", "type": "datetime"},
        {"name": "price", "type": "float", "minimum": 0, "required": False},
    ],
    "constants": {"vat": 0.2},
    "tables": {"fee": {"north": 100, "south": 80, "*": 90}},
    "derived": [{"name": "price_per_m2", "expression": "price / area_m2"},
                {"name": "area_fee", "expression": "area_m2 * fee[district] * (1 + vat)"}],
    "time_parts": [{"field": "listed_at", "parts": ["month", "weekend"]}],
    "tasks": [{"name": "price", "kind": "regression", "target": "price",
               "features": ["area_m2", "rooms", "district", "listed_at_month"]}],
}


def _problems(data: Any) -> dict[str, str]:
    with pytest.raises(DeclarationInvalid) as caught:
        parse_declaration(data)
    return {p.path: p.reason for p in caught.value.problems}


def _with(change) -> dict[str, Any]:  # noqa: ANN001
    data = copy.deepcopy(HOUSES)
    change(data)
    return data


def test_a_full_declaration_parses_and_describes_its_columns() -> None:
    spec = parse_declaration(HOUSES)
    assert spec.columns["district"] == "category" and spec.columns["area_fee"] == "number"
    assert spec.computed == ("listed_at_month", "listed_at_weekend", "price_per_m2", "area_fee")
    assert spec.scaled_features == ("area_m2", "rooms", "listed_at_month")
    assert spec.targets == ("price",) and spec.task("price").gate_metric == "r2"
    assert spec.task("price").allowed_algorithms[0].value == "random_forest"
    # YAML and JSON both read; the round trip keeps the declaration.
    assert parse_declaration(read_declaration_text(json.dumps(spec.to_data()))) == spec


def test_the_built_in_streams_are_declaration_files() -> None:
    names = [spec.name for spec in builtin_streams()]
    assert {"energy", "pressure", "people"} <= set(names)
    pressure = next(spec for spec in builtin_streams() if spec.name == "pressure")
    # The original features as a declared instance of the general transforms.
    assert {r.name: (r.stat.value, r.window) for r in pressure.rolling} == {
        "media_hora": ("mean", 3600), "media_30d": ("mean", 30 * 86400), "std_30d": ("std", 30 * 86400)}
    assert [d.expression for d in pressure.derived] == ["media_hora - media_30d", "media_hora / (media_30d + 1)"]


def test_the_published_json_schema_is_current() -> None:
    # Regenerate with: python -m shared.streams schema > shared/streams/declaration.schema.json
    assert json.loads(SCHEMA_FILE.read_text()) == declaration_json_schema()


BAD = [
    ("unknown type", lambda d: d["fields"][1].update(type="decimal"), "fields[1].type", "Input should be"),
    ("duplicate field", lambda d: d["fields"].append({"name": "rooms", "type": "int"}), "fields[6].name",
     "already used"),
    ("non-identifier", lambda d: d["fields"][1].update(name="area m2"), "fields[1].name", "should match pattern"),
    ("unsafe stream name", lambda d: d.update(name="raw.houses"), "name", "should match pattern"),
    ("target not a column", lambda d: d["tasks"][0].update(target="cost"), "tasks[0].target",
     "'cost' is not a column"),
    ("feature not a column", lambda d: d["tasks"][0]["features"].append("garden"), "tasks[0].features[4]",
     "'garden' is not a column"),
    ("expression over an unknown field", lambda d: d["derived"][0].update(expression="price / surface"),
     "derived[0].expression", "unknown name 'surface'"),
    ("division by a constant zero", lambda d: d["derived"][0].update(expression="price / (vat - 0.2)"),
     "derived[0].expression", "division by zero"),
    ("syntax error with position", lambda d: d["derived"][0].update(expression="price * / area_m2"),
     "derived[0].expression", "position 8"),
    ("cycle", lambda d: d["derived"].extend([{"name": "a", "expression": "b + 1"}, {"name": "b", "expression": "a * 2"}]),
     "derived[2].expression", "cycle"),
    ("lookup on a number", lambda d: d["derived"][1].update(expression="fee[rooms]"), "derived[1].expression", ""),
    ("closed category without values", lambda d: d["fields"][3].pop("categories"), "fields[3].categories",
     "needs its values"),
    ("too many categories", lambda d: d["fields"][3].update(categories=[f"c{i}" for i in range(MAX_CATEGORIES + 1)]),
     "fields[3].categories", "at most"),
    ("too many fields", lambda d: d["fields"].extend({"name": f"f{i}", "type": "float", "required": False}
                                                      for i in range(MAX_FIELDS)), "fields", "at most"),
    ("bounds on text", lambda d: d["fields"][0].update(minimum=1), "fields[0].minimum", "bounds apply"),
    ("algorithm of another kind", lambda d: d["tasks"][0].update(algorithms=["kmeans"]), "tasks[0].algorithms[0]",
     "cannot learn"),
    ("metric of another kind", lambda d: d["tasks"][0].update(metric="accuracy"), "tasks[0].metric", "no regression"),
    ("time part of a number", lambda d: d["time_parts"][0].update(field="rooms"), "time_parts[0].field",
     "not datetime"),
    ("rolling window not a multiple", lambda d: d.update(rolling=[{"name": "r", "value": "area_m2", "stat": "mean",
                                                                  "window": "90m", "bucket": "1h"}]),
     "rolling[0].window", "not a multiple"),
    ("unknown key", lambda d: d.update(key="owner"), "key", "not a field"),
    ("history of text", lambda d: d.update(entity={"history": {"value": "district"}}), "entity.history.value",
     "not a numeric column"),
    ("history deviation unknown", lambda d: d.update(entity={"history": {"value": "area_m2", "deviation": "spread"}}),
     "entity.history.deviation", "not a numeric column"),
    ("extra property", lambda d: d.update(colour="blue"), "colour", "Extra inputs"),
]


@pytest.mark.parametrize(("case", "change", "path", "reason"), BAD, ids=[case for case, *_ in BAD])
def test_each_bad_declaration_names_the_path_and_the_reason(case: str, change, path: str, reason: str) -> None:
    problems = _problems(_with(change))
    assert path in problems, problems
    assert reason in problems[path], problems


def test_every_problem_is_reported_not_just_the_first() -> None:
    def two_faults(d: dict[str, Any]) -> None:
        d["tasks"][0]["target"] = "cost"
        d["derived"][0]["expression"] = "price / nothing"

    assert {"tasks[0].target", "derived[0].expression"} <= set(_problems(_with(two_faults)))


def test_evolution_follows_backward_compatibility() -> None:
    old = parse_declaration(HOUSES)

    def compatible(d: dict[str, Any]) -> None:
        d["fields"].append({"name": "garden_m2", "type": "float", "required": False})
        d["fields"][3]["categories"].append("east")
        d["fields"][1]["maximum"] = 5000
        d["derived"].append({"name": "rooms_per_100m2", "expression": "rooms / area_m2 * 100"})
        d["tasks"].append({"name": "rooms", "kind": "regression", "target": "rooms", "features": ["area_m2"]})
        d["constants"]["vat"] = 0.21

    assert incompatibilities(old, parse_declaration(_with(compatible))) == []
    refused = {
        "removing a field": (lambda d: (d["fields"].pop(2), d["tasks"][0]["features"].remove("rooms")), "fields",
                             "'rooms' cannot be removed"),
        "retyping a field": (lambda d: d["fields"][2].update(type="float"), "fields[2].type", "cannot change type"),
        "a new required field": (lambda d: d["fields"].append({"name": "floor", "type": "int"}), "fields[6].required",
                                 "must be optional"),
        "narrowing a bound": (lambda d: d["fields"][1].update(maximum=1000), "fields[1].maximum", "cannot fall"),
        "dropping a category": (lambda d: d["fields"][3]["categories"].pop(), "fields[3].categories", "cannot drop"),
        "redefining a derived field": (lambda d: d["derived"][0].update(expression="price / rooms"), "derived[0]",
                                       "cannot be redefined"),
        "changing a task's features": (lambda d: d["tasks"][0]["features"].pop(), "tasks[0].features",
                                       "cannot change its features"),
    }
    for case, (change, path, reason) in refused.items():
        problems = {p.path: p.reason for p in incompatibilities(old, parse_declaration(_with(change)))}
        assert path in problems and reason in problems[path], (case, problems)


def test_the_catalog_takes_newer_versions_and_drops_archived_streams() -> None:
    houses = parse_declaration(HOUSES)
    catalog = Catalog(builtin_streams())
    seen: list[tuple[str, int, str]] = []
    catalog.on_change(lambda name, declared: seen.append((name, declared.version, declared.status)))
    assert catalog.put(Declared(houses, 1))
    assert not catalog.put(Declared(houses, 1))  # the same version again changes nothing
    assert catalog.get("houses") is houses
    assert not catalog.put(Declared(houses, 0))  # never back to an older version
    assert catalog.put(Declared(houses, 2, "archived"))
    assert "houses" not in catalog and "houses" not in catalog.names()
    with pytest.raises(UnknownStream, match="unknown stream 'houses'"):
        catalog.get("houses")
    assert seen == [("houses", 1, "active"), ("houses", 2, "archived")]


def test_declaration_files_on_disk_are_read_as_yaml(tmp_path: Path) -> None:
    from shared.streams import load_declaration

    path = tmp_path / "houses.yaml"
    path.write_text("name: houses\nfields:\n  - {name: x, type: float}\n")
    assert load_declaration(path).field("x").numeric
    path.write_text("name: houses\nfields: [\n")
    with pytest.raises(DeclarationInvalid, match="not YAML or JSON at line"):
        load_declaration(path)


def test_the_readme_example_declaration_is_valid() -> None:
    import re

    from tests.processes import REPO

    readme = (REPO / "README.md").read_text()
    section = readme.split("### The declaration format", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example is not None
    spec = parse_declaration(read_declaration_text(example.group(1)))
    assert spec.name == "houses" and spec.task("price").kind.value == "regression"


def test_the_readme_lifecycle_task_is_valid_on_the_energy_stream() -> None:
    import re

    from tests.processes import REPO

    section = (REPO / "README.md").read_text().split("## Models that stay right", 1)[1]
    example = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert example is not None
    energy = next(s for s in builtin_streams() if s.name == "energy").model_dump(mode="json", exclude_none=True)
    energy["tasks"] = read_declaration_text(example.group(1))["tasks"]
    task = parse_declaration(energy).task("carbon")
    assert task.optional_features == ("fossil_share_energy",) and task.monitor.retrain_window == 2000
    assert task.shadow.promote == "auto" and task.deploy == "champion"

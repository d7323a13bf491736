"""Proposing a stream declaration from an uploaded table (shared.streams.infer)."""

from __future__ import annotations

import csv
import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway.upload.csvfile import BadCsv, inspect_csv, iter_rows
from shared.streams import StreamSpec, parse_declaration
from shared.streams.declaration import MAX_FIELDS
from shared.streams.infer import (
    Ignored,
    Inference,
    InferenceError,
    field_name,
    infer_declaration,
    infer_from_csv,
    numeric_bounds,
)
from shared.validation import validate_batch

# -- a table of houses with every kind of column ---------------------------------

HOUSES_HEADER = [
    "order_id", "seq_id", "area", "rooms", "Has Garden", "district", "listed_at",
    "notes", "agent", "floor", "temp_delta", "Discount %", "price",
]
# i % 12 -> district: north 4, south 3, east 2, then bay, coast and west once each.
DISTRICTS = ["north"] * 4 + ["south"] * 3 + ["east"] * 2 + ["west", "coast", "bay"]


def houses(rows: int = 60, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    start = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
    table = []
    for i in range(rows):
        area = rng.uniform(40, 200)
        rooms = rng.randint(1, 6)
        price = 3 * area + 10 * rooms + rng.gauss(0, 5)  # the relationship a model would learn
        table.append([
            f"H-{i:04d}",
            str(i + 1),
            f"{area:.1f}",
            str(rooms),
            ["yes", "no", "YES", "No"][i % 4],
            DISTRICTS[i % 12],
            (start + timedelta(hours=7 * i)).isoformat().replace("+00:00", "Z"),
            f"Bright house number {i} with a garden, close to the school and the shops",
            f"Agent {i}",
            "" if i % 7 == 0 else str(rng.randint(0, 10)),
            f"{rng.uniform(-5, 5):.2f}",
            str(rng.randint(10, 90)),
            f"{price:.2f}",
        ])
    return table


def column(table: list[list[str]], header: list[str], name: str) -> list[str]:
    index = header.index(name)
    return [row[index] for row in table]


def fields_of(inference: Inference) -> dict[str, dict[str, Any]]:
    return {spec["name"]: spec for spec in inference.declaration["fields"]}


def only_task(inference: Inference) -> dict[str, Any]:
    (task,) = inference.declaration["tasks"]
    return task


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, delimiter: str = ",", bom: bool = False) -> Path:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def upload_records(path: Path, stream: StreamSpec) -> list[dict[str, Any]]:
    """The records an upload of ``path`` to ``stream`` would validate."""
    layout = inspect_csv(path, stream, max_rows=1_000_000)
    records = []
    for row in iter_rows(path, layout):
        assert row.record is not None, row.problem
        records.append(row.record)
    return records


def test_mixed_table_gives_the_expected_declaration() -> None:
    table = houses()
    inference = infer_declaration(HOUSES_HEADER, table, name="houses", target="price")
    spec = parse_declaration(inference.declaration)
    fields = fields_of(inference)

    assert inference.declaration["format_version"] == 1
    assert {name: f["type"] for name, f in fields.items()} == {
        "order_id": "str", "area": "float", "rooms": "int", "has_garden": "bool", "district": "category",
        "listed_at": "datetime", "floor": "int", "temp_delta": "float", "discount": "int", "price": "float",
    }
    # Optional: the column with empty cells, and the target (labels may come later).
    assert {name for name, f in fields.items() if f.get("required", True) is False} == {"floor", "price"}
    assert spec.key == "order_id" and spec.field("order_id").required

    assert fields["district"]["categories"] == ["north", "south", "east", "bay", "coast", "west"]
    assert fields["district"]["open"] is True

    for name in ("area", "rooms", "floor", "temp_delta", "discount", "price"):
        values = [float(v) for v in column(table, HOUSES_HEADER, name if name != "discount" else "Discount %") if v]
        low, high = min(values), max(values)
        assert (fields[name]["minimum"], fields[name]["maximum"]) == numeric_bounds(
            low, high, integer=fields[name]["type"] == "int", percent=name == "discount"
        )
        assert fields[name]["minimum"] <= low - 0.5 * max(high - low, abs(low), abs(high)) or low >= 0
        assert fields[name]["maximum"] >= high
    assert fields["area"]["minimum"] == 0  # every area is positive: no negative bound
    assert fields["temp_delta"]["minimum"] < 0  # negative readings were seen
    assert (fields["discount"]["minimum"], fields["discount"]["maximum"], fields["discount"]["unit"]) == (0, 100, "%")

    notes = column(table, HOUSES_HEADER, "notes")
    assert inference.ignored == [
        Ignored("seq_id", "identifier: every value differs (the key is 'order_id')"),
        Ignored("notes", f"free text: values average {sum(map(len, notes)) / len(notes):.0f} characters"),
        Ignored("agent", "identifier: every value differs (the key is 'order_id')"),
    ]
    assert [tp.field for tp in spec.time_parts] == ["listed_at"]
    assert spec.context == ("order_id", "listed_at")
    task = only_task(inference)
    assert (task["name"], task["kind"], task["target"]) == ("price", "regression", "price")
    assert task["features"] == [
        "area", "rooms", "has_garden", "district", "floor", "temp_delta", "discount",
        "listed_at_hour", "listed_at_day_of_week", "listed_at_month", "listed_at_weekend",
    ]
    assert any("'Has Garden' is field 'has_garden'" in note for note in inference.notes)
    assert any("optional (some cells empty): floor" == note for note in inference.notes)


def test_every_row_of_the_table_uploads_against_the_proposal(tmp_path: Path) -> None:
    inference = infer_declaration(HOUSES_HEADER, houses(), name="houses", target="price")
    stream = parse_declaration(inference.declaration)
    # As the notes say, a file uploaded later names its columns by field name.
    renamed = [field_name(cell, i) for i, cell in enumerate(HOUSES_HEADER, start=1)]
    path = write_csv(tmp_path / "houses.csv", renamed, houses())
    records = upload_records(path, stream)
    result = validate_batch(stream, records)
    assert len(records) == 60
    assert result.reasons == {}


def test_the_proposal_is_yaml_ready() -> None:
    inference = infer_declaration(HOUSES_HEADER, houses(), name="houses", target="price")
    text = yaml.safe_dump(inference.declaration, sort_keys=False)
    assert parse_declaration(yaml.safe_load(text)).to_data() == parse_declaration(inference.declaration).to_data()


def test_csv_file_reads_like_an_upload(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "houses.csv", HOUSES_HEADER, houses(), delimiter=";", bom=True)
    from_file = infer_from_csv(path, name="houses", target="price")
    assert from_file == infer_declaration(HOUSES_HEADER, houses(), name="houses", target="price")


# -- numeric bounds -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("low", "high", "integer", "percent", "expected"),
    [
        # margin = max(span, |low|, |high|) / 2, rounded outward to a power of ten below the margin
        (10, 30, True, False, (0, 50)),  # [-5, 45] -> [-10, 50]; non-negative stays non-negative
        (-3.2, 4.1, False, False, (-7, 8)),  # margin 3.65 -> [-6.85, 7.75] -> steps of 1
        (1000, 1010, False, False, (400, 1600)),  # margin 505 -> [495, 1515] -> steps of 100
        (10, 90, True, True, (0, 100)),  # a percentage stays within [0, 100]
        (10, 120, False, True, (0, 180)),  # ...only when every value was within it
        (10, 90, True, False, (0, 140)),  # and only when the column is named like one
        (0, 0, False, False, (0, 1)),  # margin 1 when every value is 0
        (0.001, 0.002, False, False, (0, 0.003)),
        (5, 5, True, False, (2, 8)),  # [2.5, 7.5] widened to whole numbers
        (-50, -10, False, False, (-80, 20)),  # a negative column may cross 0
    ],
)
def test_numeric_bounds_rule(low: float, high: float, integer: bool, percent: bool, expected: tuple) -> None:
    assert numeric_bounds(low, high, integer=integer, percent=percent) == expected


def test_numeric_bounds_of_extreme_floats_never_refuse_the_data() -> None:
    for low, high in [(-1.7e308, 1.7e308), (5e-324, 1e-323), (-1e308, -1e307), (0.1, 0.30000000000000004)]:
        minimum, maximum = numeric_bounds(low, high, integer=False, percent=False)
        assert minimum is None or minimum <= low
        assert maximum is None or maximum >= high
    assert numeric_bounds(-1.7e308, 1.7e308, integer=False, percent=False) == (None, None)


# -- what is learned -------------------------------------------------------------------

def table_with_target(values: list[str]) -> tuple[list[str], list[list[str]]]:
    rng = random.Random(3)
    return ["x", "label"], [[f"{rng.uniform(0, 10):.3f}", value] for value in values]


@pytest.mark.parametrize(
    ("values", "kind", "field_type", "classes_note"),
    [
        ([f"{i * 1.37:.2f}" for i in range(40)], "regression", "float", None),
        ([str(i * 3) for i in range(40)], "regression", "int", None),  # 40 distinct integers
        (["true", "false", "TRUE", "yes", "no"] * 4, "classification", "bool", "2 classes: true (12), false (8)"),
        (["a"] * 5 + ["b"] * 3 + ["c"] * 3, "classification", "category", "3 classes: a (5), b (3), c (3)"),
        ([str(i % 5) for i in range(30)], "classification", "int", "5 classes: 0 (6), 1 (6), 2 (6), 3 (6), 4 (6)"),
        (["0", "1", "1"] * 5, "classification", "int", "2 classes: 1 (10), 0 (5)"),  # 0/1 stay numbers
    ],
)
def test_target_kind(values: list[str], kind: str, field_type: str, classes_note: str | None) -> None:
    header, rows = table_with_target(values)
    inference = infer_declaration(header, rows, name="t", target="label")
    parse_declaration(inference.declaration)
    task = only_task(inference)
    assert (task["kind"], task["target"], task["features"]) == (kind, "label", ["x"])
    assert fields_of(inference)["label"]["type"] == field_type
    assert fields_of(inference)["label"]["required"] is False
    class_notes = [note for note in inference.notes if "classes:" in note]
    if classes_note is None:
        assert class_notes == []
    else:
        assert class_notes == [f"target 'label' has {classes_note}"]


def test_text_target_is_a_category_with_its_classes() -> None:
    header, rows = table_with_target(["gold"] * 6 + ["silver"] * 2 + ["bronze"] * 4)
    inference = infer_declaration(header, rows, name="t", target="label")
    assert fields_of(inference)["label"]["categories"] == ["gold", "bronze", "silver"]


def test_binary_text_target_takes_the_rarer_class_as_positive() -> None:
    header, rows = table_with_target(["stays"] * 8 + ["churns"] * 2)
    inference = infer_declaration(header, rows, name="t", target="label")
    assert only_task(inference)["positive_class"] == "churns"
    assert parse_declaration(inference.declaration).task("label").positive_class == "churns"


def test_float_target_with_few_values_is_regression_with_a_note() -> None:
    header, rows = table_with_target(["0.5", "1.5", "2.5"] * 5)
    inference = infer_declaration(header, rows, name="t", target="label")
    assert only_task(inference)["kind"] == "regression"
    assert any("only 3 distinct values" in note for note in inference.notes)


def test_target_is_found_by_header_or_by_field_name() -> None:
    header = ["x", "Sale Price"]
    rows = [[str(i), str(i * 2)] for i in range(30)]
    by_header = infer_declaration(header, rows, name="t", target="Sale Price")
    by_field = infer_declaration(header, rows, name="t", target="sale_price")
    assert by_header == by_field
    assert only_task(by_field)["target"] == "sale_price"


# -- errors ----------------------------------------------------------------------------------

def test_unknown_target_lists_the_columns() -> None:
    with pytest.raises(InferenceError) as failure:
        infer_declaration(HOUSES_HEADER, houses(), name="houses", target="cost")
    assert failure.value.field == "target"
    assert failure.value.reason.startswith("no column 'cost' (columns: order_id, seq_id, area, rooms, Has Garden,")


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (["7"] * 10, "single value ('7' in 10 rows): nothing to learn"),
        (["yes", "YES", "true"] * 3, "single value ('true' in 9 rows): nothing to learn"),
        ([""] * 10, "no values: nothing to learn"),
        (["2024-01-01T00:00:00", "2024-02-01T00:00:00"] * 5, "holds datetimes"),
    ],
)
def test_a_target_that_cannot_be_learned_is_refused(values: list[str], reason: str) -> None:
    header, rows = table_with_target(values)
    with pytest.raises(InferenceError) as failure:
        infer_declaration(header, rows, name="t", target="label")
    assert failure.value.field == "target"
    assert reason in failure.value.reason


def test_too_many_columns_names_the_count() -> None:
    header = [f"x{i}" for i in range(MAX_FIELDS + 1)]
    rows = [[str(r * i % 17) for i in range(MAX_FIELDS + 1)] for r in range(5)]
    with pytest.raises(InferenceError) as failure:
        infer_declaration(header, rows, name="wide", target="x1")
    assert failure.value.field == "columns"
    assert f"{MAX_FIELDS + 1} columns would become fields" in failure.value.reason
    assert f"at most {MAX_FIELDS}" in failure.value.reason


def test_a_table_with_nothing_to_learn_from_is_refused() -> None:
    rows = [[f"id{i}", str(i % 3)] for i in range(10)]
    with pytest.raises(InferenceError) as failure:
        infer_declaration(["order_id", "label"], rows, name="t", target="label")
    assert failure.value.field == "features"


def test_a_header_without_rows_is_refused() -> None:
    with pytest.raises(InferenceError) as failure:
        infer_declaration(["x", "y"], [[], ["", " "]], name="t", target="y")
    assert (failure.value.field, failure.value.reason) == ("rows", "the table has no data rows")


def test_a_bad_stream_name_is_refused() -> None:
    with pytest.raises(InferenceError) as failure:
        infer_declaration(["x", "y"], [["1", "2"]], name="Raw.Houses", target="y")
    assert failure.value.field == "name"


# The same file, refused by the upload and by inference with the same reason.
BAD_FILES = {
    "non-UTF-8": b"a,b\n1,caf\xe9\n",
    "malformed": b'a,b\n1,"x"y\n',
    "empty": b"",
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_file_is_refused_as_an_upload_refuses_it(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(BAD_FILES[kind])
    stream = parse_declaration({
        "name": "ab",
        "fields": [{"name": "a", "type": "float"}, {"name": "b", "type": "str"}],
    })
    with pytest.raises(BadCsv) as upload:
        inspect_csv(path, stream, max_rows=100)
    with pytest.raises(InferenceError) as failure:
        infer_from_csv(path, name="ab", target="a")
    assert (failure.value.field, failure.value.reason) == (upload.value.field, upload.value.reason)


# -- names -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("price", "price"),
        ("  price ", "price"),
        ("CamelCase", "CamelCase"),  # an identifier stays as it is
        ("Sale Price", "sale_price"),
        ("Sale-Price (EUR)", "sale_price_eur"),
        ("2nd floor", "col_2nd_floor"),
        ("Preço (€)", "preco"),
        ("€ €", "col_4"),
        ("x" * 70, "x" * 63),
        ("Long " + "y" * 70, "long_" + "y" * 58),
    ],
)
def test_field_names(header: str, name: str) -> None:
    assert field_name(header, 4) == name


def test_renamed_columns_are_noted_with_their_field_names() -> None:
    header = ["Area (m2)", "2nd Floor", "price"]
    rows = [[str(40 + i), str(i % 2), str(100 + 7 * i)] for i in range(30)]
    inference = infer_declaration(header, rows, name="t", target="price")
    assert [f["name"] for f in inference.declaration["fields"]] == ["area_m2", "col_2nd_floor", "price"]
    assert "column 'Area (m2)' is field 'area_m2': a file uploaded to this stream must name that column 'area_m2'" \
        in inference.notes
    assert any(note.startswith("column '2nd Floor' is field 'col_2nd_floor'") for note in inference.notes)


@pytest.mark.parametrize(
    ("header", "first", "second"),
    [
        (["Sale Price", "x", "sale_price"], "'Sale Price' (column 1)", "'sale_price' (column 3)"),
        (["Price", "price"], "'Price' (column 1)", "'price' (column 2)"),
        (["a", "a"], "'a' (column 1)", "'a' (column 2)"),
    ],
)
def test_duplicate_field_names_name_both_columns(header: list[str], first: str, second: str) -> None:
    with pytest.raises(InferenceError) as failure:
        infer_declaration(header, [["1"] * len(header)], name="t", target=header[0])
    assert failure.value.field == "columns"
    assert f"columns {first} and {second} both become field" in failure.value.reason


@pytest.mark.parametrize(
    ("name", "is_id"),
    [("id", True), ("ID", True), ("order_id", True), ("ORDER_ID", True), ("userId", True), ("user2ID", True),
     ("paid", False), ("VALID", False), ("idea", False), ("identity", False)],
)
def test_id_names(name: str, is_id: bool) -> None:
    header = [name, "x", "label"]
    rows = [[str(1000 + i), str(i % 7), str(i % 2)] for i in range(30)]  # all-distinct integers
    inference = infer_declaration(header, rows, name="t", target="label")
    # An all-distinct integer column is the key when named like an id, else a feature.
    assert (inference.declaration.get("key") == name) is is_id
    assert (name in only_task(inference)["features"]) is not is_id


# -- keys and text ---------------------------------------------------------------------

def test_short_distinct_codes_are_the_key_without_an_id_name() -> None:
    rows = [[f"SKU-{i:05d}", str(i % 4), str(i * 3)] for i in range(30)]
    inference = infer_declaration(["sku", "x", "y"], rows, name="t", target="y")
    assert inference.declaration["key"] == "sku"
    assert fields_of(inference)["sku"] == {"name": "sku", "type": "str"}


def test_an_id_with_missing_values_cannot_be_the_key() -> None:
    rows = [["" if i == 3 else f"u{i}", str(i % 4), str(i * 3)] for i in range(30)]
    inference = infer_declaration(["user_id", "x", "y"], rows, name="t", target="y")
    assert "key" not in inference.declaration
    assert inference.ignored == [
        Ignored("user_id", "identifier: every value differs, but 1 rows lack it, so it cannot be the key")
    ]


def test_text_with_too_many_values_for_a_category_is_left_out() -> None:
    # 60 cities over 120 rows: repeated (no id), yet more than 50 distinct.
    rows = [[f"city {i % 60}", str(i % 4), str(i * 3)] for i in range(120)]
    inference = infer_declaration(["city", "x", "y"], rows, name="t", target="y")
    assert inference.ignored == [Ignored(
        "city", "text with more than 50 distinct values in 120 rows: too many for a category "
        "(at most 50, and at most one per two rows)"
    )]
    # ...and more than one distinct value per two rows is no category either.
    rows = [[f"city {i % 12}", str(i % 4), str(i * 3)] for i in range(20)]
    inference = infer_declaration(["city", "x", "y"], rows, name="t", target="y")
    assert [i.column for i in inference.ignored] == ["city"]
    assert "12 distinct values in 20 rows" in inference.ignored[0].reason


def test_decimal_commas_are_pointed_out() -> None:
    rows = [[f"{i},5", str(i % 4), str(i * 3)] for i in range(30)]
    inference = infer_declaration(["weight", "x", "y"], rows, name="t", target="y")
    assert [i.column for i in inference.ignored] == ["weight"]
    assert any("'weight' looks like numbers written with a decimal comma" in note for note in inference.notes)


def test_unnamed_and_empty_columns_are_left_out() -> None:
    rows = [[str(i), "", "v", str(i * 2)] for i in range(10)]
    inference = infer_declaration(["x", "blank", "", "y"], rows, name="t", target="y")
    assert inference.ignored == [Ignored("blank", "empty: no values"), Ignored("column 3", "no name in the header")]
    assert [f["name"] for f in inference.declaration["fields"]] == ["x", "y"]


def test_datetime_columns_are_context_and_the_first_gives_time_parts() -> None:
    rows = [[f"2024-05-{1 + i % 28:02d}T10:00:00", f"2024-06-{1 + i % 28:02d}", str(i % 5), str(i)] for i in range(30)]
    inference = infer_declaration(["created", "due", "x", "y"], rows, name="t", target="y")
    spec = parse_declaration(inference.declaration)
    assert spec.context == ("created", "due")
    assert [(tp.field, [p.value for p in tp.parts]) for tp in spec.time_parts] == [
        ("created", ["hour", "day_of_week", "month", "weekend"])
    ]
    assert spec.task("y").features == ("x", "created_hour", "created_day_of_week", "created_month", "created_weekend")


def test_time_parts_that_would_clash_with_a_field_are_left_out() -> None:
    rows = [[f"2024-05-{1 + i % 28:02d}T10:00:00", str(i % 24), str(i)] for i in range(30)]
    inference = infer_declaration(["ts", "ts_hour", "y"], rows, name="t", target="y")
    spec = parse_declaration(inference.declaration)
    assert spec.time_parts == ()
    assert spec.task("y").features == ("ts_hour",)
    assert "no time parts for 'ts': ts_hour is already a field" in inference.notes


# -- rows -------------------------------------------------------------------------------------

def test_reading_stops_at_max_rows_with_a_note() -> None:
    rows = [[str(i % 10), str(i)] for i in range(30)] + [["1000000", "5"]]
    inference = infer_declaration(["x", "y"], rows, name="t", target="y", max_rows=10)
    assert inference.notes[0].startswith("read the first 10 rows only")
    assert fields_of(inference)["x"]["maximum"] < 1000  # the later, larger value was never read
    assert inference.declaration["description"] == "Proposed from an uploaded table of 10 rows."
    untouched = infer_declaration(["x", "y"], rows[:10], name="t", target="y", max_rows=10)
    assert not any(note.startswith("read the first") for note in untouched.notes)


def test_rows_too_wide_or_empty_are_left_out_and_short_rows_have_missing_cells() -> None:
    rows = [[str(i), str(i * 2), str(i * 3)] for i in range(20)]
    rows += [["1", "2", "3", "4"], ["", "", ""], [], ["5", "6"]]
    inference = infer_declaration(["x", "z", "y"], rows, name="t", target="y")
    assert "1 rows have more cells than the header (3) and were left out, as an upload rejects them" in inference.notes
    assert "1 rows with every cell empty were left out" in inference.notes
    assert inference.declaration["description"] == "Proposed from an uploaded table of 21 rows."
    assert fields_of(inference)["x"].get("required", True) is True


# -- property: a proposal accepts the table it came from --------------------------------------

WORDS = ["red", "green", "blue", "a b", "x,y", 'say "hi"', "Ünï", "42a", "yes", "1"]


def cells(kind: str, rows: int) -> st.SearchStrategy[list[str]]:
    value: st.SearchStrategy[str]
    if kind == "int":
        value = st.integers(-(10**20), 10**20).map(str)
    elif kind == "float":
        value = st.floats(allow_nan=False, allow_infinity=False).map(repr)
    elif kind == "bool":
        value = st.sampled_from(["true", "False", "YES", "no"])
    elif kind == "datetime":
        value = st.datetimes(timezones=st.none() | st.just(UTC)).map(datetime.isoformat)
    else:
        printable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12)
        value = st.sampled_from(WORDS) | printable
    missing_or_value = st.just("") | value
    return st.lists(missing_or_value if kind != "complete" else value, min_size=rows, max_size=rows)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    rows = draw(st.integers(2, 30))
    target_kind = draw(st.sampled_from(["int", "float", "bool", "category"]))
    kinds = draw(st.lists(st.sampled_from(["int", "float", "bool", "datetime", "category"]), max_size=5))
    columns = [draw(cells(target_kind, rows)), draw(st.lists(st.floats(-1e6, 1e6).map(repr), min_size=rows, max_size=rows))]
    columns += [draw(cells(kind, rows)) for kind in kinds]
    header = ["t", "f0"] + [f"c{i}" for i in range(1, len(kinds) + 1)]
    return header, [list(row) for row in zip(*columns, strict=True)]


@settings(max_examples=150, deadline=None)
@given(tables())
def test_a_proposal_accepts_every_row_of_its_table(table: tuple[list[str], list[list[str]]]) -> None:
    header, rows = table
    with tempfile.TemporaryDirectory() as directory:
        path = write_csv(Path(directory) / "table.csv", header, rows)
        try:
            inference = infer_from_csv(path, name="prop", target="t")
        except InferenceError as error:
            # Only a target without two distinct values may be refused here.
            assert error.field == "target", error
            assert "nothing to learn" in error.reason
            return
        stream = parse_declaration(inference.declaration)
        records = upload_records(path, stream)
    result = validate_batch(stream, records)
    assert result.reasons == {}, result.reasons
    for spec in stream.fields:
        if spec.categories is not None:
            seen = {r[spec.name] for r in records if spec.name in r}
            assert seen <= set(spec.categories), spec.name  # categories are complete


def test_distinct_values_are_tracked_across_batches_of_rows() -> None:
    # More rows than one batch (shared.streams.infer reads 4096 at a time).
    rows = [[f"C{i:05d}", str(i % 9), str(i * 3)] for i in range(5000)]
    assert infer_declaration(["code", "x", "y"], rows, name="t", target="y").declaration["key"] == "code"
    rows[-1][0] = rows[0][0]  # one repeat, in the second batch
    inference = infer_declaration(["code", "x", "y"], rows, name="t", target="y")
    assert "key" not in inference.declaration
    assert [i.column for i in inference.ignored] == ["code"]

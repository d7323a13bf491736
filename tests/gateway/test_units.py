"""The gateway's pure parts, without a broker: request checks, the KMeans fast
path, file types, CSV and XLSX reading, event encoding, multipart receiving."""

from __future__ import annotations

import itertools
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from services.gateway.features import RequestSchema
from services.gateway.upload.csvfile import BadCsv, TooManyRows, inspect_csv, iter_rows
from services.gateway.upload.events import encode_chunk
from services.gateway.upload.filetype import FileType, UnsupportedFile, detect
from services.gateway.upload.receive import BadForm, UploadTooLarge, receive_form
from services.gateway.upload.xlsx import UnsafeXlsx, XlsxLimits, check_archive, xlsx_to_csv
from shared.events import RawEvent
from shared.ml.bundle import read_verified_bundle
from shared.ml.kmeans import NearestCentre
from shared.ml.serving import ServingModel
from tests.streams import ENERGY, PEOPLE, PRESSURE, STREAMS
from shared.validation import RecordInvalid, validate_batch
from tests.gateway.bundles import build_bundle
from tests.gateway.files import csv_bytes, energy_table, xlsx_bytes, zip_bomb_xlsx

VALUES = [None, 0, 1, 50, 100, 101, -1, 2.5, 1e308, "12", " 7.5 ", "abc", "", "NaN", "inf", "-inf", True, False,
          [1], {"a": 1}, float("nan"), float("inf"), 2000, 30, 16]


@pytest.mark.parametrize("stream", list(STREAMS.values()), ids=list(STREAMS))
def test_single_row_checks_agree_with_validate_batch(stream) -> None:
    for task in stream.tasks:
        schema = RequestSchema.of(stream, task)
        if not schema.direct:
            continue  # computed inputs: only the columnar path applies
        names = [spec.name for spec in schema.fields]
        rng = np.random.default_rng(len(names))
        for _ in range(400):
            record = {name: VALUES[rng.integers(len(VALUES))] for name in names if rng.random() < 0.9}
            batch = schema.check_many([record])[1]
            try:
                values = schema.check_one(record)
            except RecordInvalid as error:
                assert batch == {0: f"{error.field}: {error.reason}"}, record
            else:
                assert batch == {}, record
                columns = schema.check_many([record])[0]
                for name in names:
                    assert values.get(name, np.nan) == pytest.approx(columns[name][0], nan_ok=True)


def test_optional_features_may_be_left_out() -> None:
    carbon = RequestSchema.of(ENERGY, ENERGY.task("carbon"))
    assert carbon.check_one({"renewables_share_energy": "0.480"}) == {"renewables_share_energy": 0.48}
    with pytest.raises(RecordInvalid, match="renewables_share_energy: missing"):
        carbon.check_one({"fossil_share_energy": 3})



def test_computed_features_are_computed_from_their_inputs() -> None:
    # A request carries the raw inputs: fields, and rolling statistics (any
    # finite number); derived features are computed as the normalizer does.
    anomaly = RequestSchema.of(PRESSURE, PRESSURE.task("anomaly"))
    assert not anomaly.direct
    assert [spec.name for spec in anomaly.fields] == ["pressure_mca", "media_hora", "media_30d", "std_30d"]
    good = {"pressure_mca": 10, "media_hora": 12.0, "media_30d": 10.0, "std_30d": 1.0}
    values, reasons = anomaly.check_many([{**good, "pressure_mca": -5}, good, {**good, "media_hora": "high"}])
    assert reasons == {0: "pressure_mca: below minimum 0", 2: "media_hora: expected a number, got 'high'"}
    assert values["dif_media"][1] == 2.0
    assert values["media_hora_relativa"][1] == pytest.approx(12.0 / 11.0)


def _cluster_model(tmp_path: Path) -> tuple[ServingModel, bytes, list[list[float]]]:
    bundle = build_bundle(tmp_path, "cluster", 1, clusters=4)
    meta, onnx_bytes, _ = read_verified_bundle(tmp_path, bundle.bundle_dir, bundle.sha256)
    assert meta.centers is not None
    return ServingModel(meta, onnx_bytes, 1), onnx_bytes, meta.centers


def test_numpy_nearest_centre_matches_the_onnx_graph(tmp_path: Path) -> None:
    model, onnx_bytes, centres = _cluster_model(tmp_path)
    nearest = NearestCentre.build(onnx_bytes, centres, 3)
    assert nearest.agrees_with(model.score_onnx, centres)
    assert model.nearest is not None  # the model took the fast path itself
    rng = np.random.default_rng(5)
    points = np.column_stack([rng.uniform(0, 100, 500), rng.uniform(0, 100, 500), rng.uniform(0, 1000, 500)])
    ours, theirs = nearest.score(points), model.score_onnx(points.astype(np.float32))
    assert np.mean(ours.prediction == theirs.prediction) > 0.99
    assert theirs.score is not None
    np.testing.assert_allclose(ours.score, theirs.score, rtol=1e-3, atol=1e-2)
    for i in range(0, 500, 50):  # one row goes through plain Python, a batch through numpy
        single = nearest.score(points[i:i + 1])
        assert (single.prediction[0], pytest.approx(single.score[0])) == (ours.prediction[i], ours.score[i])
    # Each centre is its own category, numbered by rising carbon intensity.
    assert nearest.score(np.asarray(centres)).prediction.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert [nearest.score(np.asarray([c])).prediction[0] for c in centres] == [0.0, 1.0, 2.0, 3.0]
    assert [c[2] for c in centres] == sorted(c[2] for c in centres)


def test_fast_path_is_refused_when_centres_disagree_with_the_graph(tmp_path: Path) -> None:
    model, onnx_bytes, centres = _cluster_model(tmp_path)
    shuffled = centres[::-1]
    assert not NearestCentre.build(onnx_bytes, shuffled, 3).agrees_with(model.score_onnx, shuffled)
    with pytest.raises(ValueError):
        NearestCentre.build(onnx_bytes, [[1.0, 2.0]], 3)


def test_file_types() -> None:
    assert detect("a.csv", b"country,") is FileType.CSV
    assert detect("noext", b"country,") is FileType.CSV
    assert detect("a.XLSX", b"PK\x03\x04rest") is FileType.XLSX
    assert detect("noext", b"PK\x03\x04rest") is FileType.XLSX
    for name, head in [("a.xlsx", b"country"), ("a.csv", b"PK\x03\x04"), ("a.csv", b"ab\x00c"), ("a.json", b"{}"),
                       ("a.csv", b"%PDF-1.7"), ("a.xls", b"\xd0\xcf\x11\xe0")]:
        with pytest.raises(UnsupportedFile):
            detect(name, head)


def _write(tmp_path: Path, content: bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_csv_layout_and_rows(tmp_path: Path) -> None:
    content = "\ufeffCountry ; YEAR;renewables_share_energy;fossil_share_energy;carbon_intensity_elec;iso\n" \
              "Brasil;2020;45,5;50;100;BR\n\nChile;;1;2;3\nX;1;2;3;4;5;6\n"
    path = _write(tmp_path, content.encode())
    layout = inspect_csv(path, ENERGY, 10)
    assert (layout.delimiter, layout.rows, layout.ignored) == (";", 3, ["iso"])
    rows = list(iter_rows(path, layout))
    assert [row.number for row in rows] == [2, 4, 5]
    assert rows[0].record == {"country": "Brasil", "year": "2020", "renewables_share_energy": "45,5",
                              "fossil_share_energy": "50", "carbon_intensity_elec": "100"}
    assert "year" not in rows[1].record  # empty cell: absent, as an optional field may be
    assert rows[2].record is None and rows[2].problem == "7 cells, the header has 6"
    with pytest.raises(TooManyRows):
        inspect_csv(path, ENERGY, 2)
    with pytest.raises(BadCsv, match="missing columns person_id, age, years_education"):
        inspect_csv(path, PEOPLE, 10)


def test_encoded_rows_are_raw_events(tmp_path: Path) -> None:
    path = _write(tmp_path, csv_bytes(energy_table(5)) + b"Nowhere,1999,500,1,1\n")
    layout = inspect_csv(path, ENERGY, 100)
    encoded = encode_chunk(ENERGY, list(iter_rows(path, layout)), "ds-1")
    assert len(encoded.messages) == 5
    rejected = [(p.row, p.field, p.reason) for p in encoded.rejected]
    assert rejected == [(7, "renewables_share_energy", "above maximum 100")]
    for key, value in encoded.messages:
        event = RawEvent.model_validate_json(value)
        assert (event.source, event.dataset_id, event.stream) == ("upload", "ds-1", "energy")
        assert key.decode() == event.key == event.data["country"]
        assert isinstance(event.data["carbon_intensity_elec"], float)
    assert len({RawEvent.model_validate_json(v).event_id for _, v in encoded.messages}) == 5


def test_zip_limits_are_checked_before_parsing(tmp_path: Path) -> None:
    fine = _write(tmp_path, xlsx_bytes(energy_table(50)), "fine.xlsx")
    check_archive(fine, XlsxLimits(max_uncompressed_bytes=10**7, max_ratio=200))
    with pytest.raises(UnsafeXlsx, match="inflate to"):
        check_archive(fine, XlsxLimits(max_uncompressed_bytes=1000, max_ratio=200))
    bomb = _write(tmp_path, zip_bomb_xlsx(8 * 1024 * 1024), "bomb.xlsx")
    with pytest.raises(UnsafeXlsx, match="compressed"):
        check_archive(bomb, XlsxLimits(max_uncompressed_bytes=10**9, max_ratio=200))
    many = tmp_path / "many.xlsx"
    with zipfile.ZipFile(many, "w") as archive:
        for i in range(10_001):
            archive.writestr(f"m{i}", b"")
    with pytest.raises(UnsafeXlsx, match="members"):
        check_archive(many, XlsxLimits(10**9, 200))


def test_xlsx_rows_keep_their_sheet_numbers(tmp_path: Path) -> None:
    rows = energy_table(4)
    rows.insert(2, [None, None])  # a blank sheet row 3
    rows[1][0] = "Line\nbreak"
    source = _write(tmp_path, xlsx_bytes(rows), "s.xlsx")
    target = tmp_path / "s.csv"
    assert xlsx_to_csv(source, target, 100) == 6
    layout = inspect_csv(target, ENERGY, 100)
    parsed = list(iter_rows(target, layout))
    assert [row.number for row in parsed] == [2, 4, 5, 6]
    assert parsed[0].record["country"] == "Line break"
    assert parsed[1].record["year"] == str(rows[3][1])


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _form(boundary: str, file_content: bytes, filename: str = "C:\\Users\\me\\data.csv") -> list[bytes]:
    return [
        f'--{boundary}\r\nContent-Disposition: form-data; name="stream"\r\n\r\nenergy\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode(),
        *(file_content[i:i + 100] for i in range(0, len(file_content), 100)),
        f"\r\n--{boundary}--\r\n".encode(),
    ]


async def test_multipart_is_received_to_a_file_within_the_limit(tmp_path: Path) -> None:
    content = csv_bytes(energy_table(20))
    form = await receive_form("multipart/form-data; boundary=xyz", _chunks(*_form("xyz", content)),
                              max_file_bytes=len(content), directory=tmp_path)
    assert form.fields == {"stream": "energy"}
    assert form.file is not None and form.file.filename == "data.csv"
    assert form.file.path.read_bytes() == content and form.file.size == len(content)

    with pytest.raises(UploadTooLarge):
        await receive_form("multipart/form-data; boundary=xyz", _chunks(*_form("xyz", content)),
                           max_file_bytes=len(content) - 1, directory=tmp_path)
    assert list(tmp_path.iterdir()) == [form.file.path]  # the refused upload left nothing behind

    for content_type, parts in [
        (None, []),
        ("application/json", []),
        ("multipart/form-data", []),
        ("multipart/form-data; boundary=xyz", [b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--xyz--\r\n"]),
        ("multipart/form-data; boundary=xyz", _form("xyz", content)[:2]),
        ("multipart/form-data; boundary=xyz", [b"\x00garbage"]),
    ]:
        with pytest.raises(BadForm):
            await receive_form(content_type, _chunks(*parts), max_file_bytes=10**6, directory=tmp_path)
    assert list(tmp_path.iterdir()) == [form.file.path]


def test_every_stream_has_an_openapi_record_schema() -> None:
    from services.gateway.schemas import record_schema

    for stream, task in itertools.chain.from_iterable(((s, t) for t in s.tasks) for s in STREAMS.values()):
        inputs = RequestSchema.of(stream, task).fields
        schema = record_schema(inputs)
        assert set(schema["properties"]) == {f.name for f in inputs}
        assert set(schema["required"]) == {f.name for f in inputs if f.required}
        if RequestSchema.of(stream, task).direct:
            assert set(schema["properties"]) == set(task.features)
            assert set(schema["required"]) == set(task.features) - set(task.optional_features)
    assert validate_batch  # the batch path is the reference the single-row path is held to


def test_idempotency_keys_give_the_same_ids_on_every_retry() -> None:
    from services.gateway.errors import ApiError
    from services.gateway.idempotency import checked_key, request_event_ids, row_event_id, upload_dataset_id

    assert upload_dataset_id("energy", "k1") == upload_dataset_id("energy", "k1")
    assert upload_dataset_id("energy", "k1") != upload_dataset_id("people", "k1")
    assert upload_dataset_id("energy", "k1") != upload_dataset_id("energy", "k2")
    dataset = upload_dataset_id("energy", "k1")
    assert row_event_id(dataset, 2) == row_event_id(dataset, 2) != row_event_id(dataset, 3)
    ids = request_event_ids("energy", "k1", 3)
    assert ids == request_event_ids("energy", "k1", 3) and len(set(ids)) == 3
    assert all(len(event_id) == 32 for event_id in ids)
    assert checked_key(None) is None and checked_key("a-UUID-like_key") == "a-UUID-like_key"
    for bad in ("", "with space", "x" * 129, "tab\there"):
        try:
            checked_key(bad)
        except ApiError as error:
            assert error.status == 422 and error.errors[0]["field"] == "Idempotency-Key"
        else:
            raise AssertionError(f"{bad!r} was accepted")


def test_body_limit_applies_to_json_bodies_only() -> None:
    from services.gateway.bodylimit import declared_length, limited

    assert limited("POST", "application/json")
    assert limited("PUT", "")
    assert not limited("GET", "application/json")
    assert not limited("POST", "multipart/form-data; boundary=x")
    assert declared_length("123") == 123
    assert declared_length(None) is None and declared_length("12a") is None

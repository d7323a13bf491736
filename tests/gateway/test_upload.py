"""POST /upload against a real gateway: rows validated, published and recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from services.gateway.schemas import UploadAnswer
from shared.events import RawEvent
from tests.gateway.conftest import Gateway, GatewayFactory
from tests.gateway.files import billion_laughs_xlsx, csv_bytes, energy_table, xlsx_bytes, zip_bomb_xlsx
from tests.gateway.kafka_read import message_count, read_records

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def with_bad_rows() -> list[list[object]]:
    rows = energy_table(10)
    rows[3][3] = "150"  # row 4 of the file: fossil share above 100
    rows[6][0] = ""  # row 7: no country
    rows[8][1] = "abc"  # row 9: year not a number
    rows.append(["Extra", 2000, 1, 2, 3, "one cell too many"])  # row 12
    return rows


async def upload(client: httpx.AsyncClient, name: str, content: bytes, stream: str = "energy",
                 content_type: str = "text/csv", **kwargs: object) -> httpx.Response:
    return await client.post("/upload", data={"stream": stream}, files={"file": (name, content, content_type)},
                             **kwargs)


async def test_csv_upload_keeps_good_rows_and_reports_bad_ones(gateway: Gateway) -> None:
    content = csv_bytes(with_bad_rows())
    response = await upload(gateway.client, "energy.csv", content)
    assert response.status_code == 200, response.text
    body = response.json()
    UploadAnswer.model_validate(body, strict=True)  # the orjson answer matches its documented schema
    assert (body["rows_total"], body["rows_accepted"], body["rows_rejected"]) == (11, 7, 4)
    assert body["rejected"] == [
        {"row": 4, "field": "fossil_share_energy", "reason": "above maximum 100"},
        {"row": 7, "field": "country", "reason": "missing"},
        {"row": 9, "field": "year", "reason": "expected a number, got 'abc'"},
        {"row": 12, "field": "row", "reason": "6 cells, the header has 5"},
    ]
    assert body["rejected_truncated"] is False
    assert body["file_type"] == "csv"
    assert body["topic"] == gateway.state.topics.raw("energy")

    records = await read_records(gateway.settings.kafka_bootstrap_servers, body["topic"], 7)
    assert await message_count(gateway.settings.kafka_bootstrap_servers, body["topic"]) == 7
    events = [RawEvent.model_validate_json(record.value) for record in records]
    assert {e.source for e in events} == {"upload"}
    assert {e.dataset_id for e in events} == {body["dataset_id"]}
    assert all(record.key == event.key.encode() == event.data["country"].encode()
               for record, event in zip(records, events, strict=True))
    countries = sorted(e.data["country"] for e in events)
    good = [row for i, row in enumerate(with_bad_rows()[1:], start=2) if i not in {4, 7, 9, 12}]
    assert countries == sorted(str(row[0]) for row in good)

    row = await gateway.state.pool.fetchrow("SELECT * FROM datasets WHERE id = $1", body["dataset_id"])
    assert row is not None
    assert (row["stream"], row["filename"], row["size_bytes"]) == ("energy", "energy.csv", len(content))
    assert (row["rows_total"], row["rows_accepted"], row["rows_rejected"]) == (11, 7, 4)
    assert row["sha256"] == body["sha256"]


async def test_xlsx_upload_is_read_like_csv(gateway: Gateway) -> None:
    rows = with_bad_rows()
    response = await upload(gateway.client, "energy.xlsx", xlsx_bytes(rows), content_type=XLSX_TYPE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["file_type"] == "xlsx"
    assert (body["rows_accepted"], body["rows_rejected"]) == (7, 4)
    assert [r["row"] for r in body["rejected"]] == [4, 7, 9, 12]
    records = await read_records(gateway.settings.kafka_bootstrap_servers, body["topic"], 7)
    values = {RawEvent.model_validate_json(r.value).data["country"]: RawEvent.model_validate_json(r.value).data
              for r in records}
    first = rows[1]
    assert values[first[0]]["renewables_share_energy"] == first[2]
    assert values[first[0]]["year"] == first[1]


async def test_upload_limit_is_413(make_gateway: GatewayFactory) -> None:
    async with make_gateway(max_upload_bytes=1000) as gateway:
        big = csv_bytes(energy_table(200))
        response = await upload(gateway.client, "big.csv", big)
        assert response.status_code == 413, response.text
        assert "1000 bytes" in response.json()["detail"]

        # Without a Content-Length the limit is enforced while the body streams in.
        boundary = "fluxo-boundary"
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="stream"\r\n\r\nenergy\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
                "Content-Type: text/csv\r\n\r\n").encode()
        sent = 0

        async def chunked() -> AsyncIterator[bytes]:
            nonlocal sent
            yield head
            for start in range(0, len(big), 256):
                sent += 256
                yield big[start:start + 256]
            yield f"\r\n--{boundary}--\r\n".encode()

        response = await gateway.client.post(
            "/upload", content=chunked(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
        )
        assert response.status_code == 413, response.text
        assert "content-length" not in {k.lower() for k in response.request.headers}
        assert await gateway.state.pool.fetchval("SELECT count(*) FROM datasets") == 0


async def test_malformed_files_are_422_and_publish_nothing(gateway: Gateway) -> None:
    good = csv_bytes(energy_table(5))
    cases = [
        ("latin1.csv", good + "Côte d'Ivoire,2000,1,2,3\n".encode("latin-1"), "file", "not UTF-8"),
        ("quote.csv", good + b'"Unclosed,2000,1,2,3\n', "file", "malformed CSV"),
        ("bad-quote.csv", good + b'"A"B,2000,1,2,3\n', "file", "malformed CSV at line 7"),
        ("empty.csv", b"", "file", "empty file"),
        ("blank.csv", b"\n\n", "file", "empty file"),
        ("columns.csv", b"country,year\nA,2000\n", "columns",
         "missing columns renewables_share_energy, fossil_share_energy ("),
        ("twice.csv", b"country,country,renewables_share_energy\n", "columns", "appears twice"),
        ("report.pdf", b"%PDF-1.4 ...", "file", "PDF"),
        ("data.json", b'{"a": 1}', "file", "unsupported file type '.json'"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "file", "legacy .xls"),
        ("fake.xlsx", good, "file", "not an XLSX workbook"),
        ("zip.csv", xlsx_bytes([["country"]]), "file", "zip archive"),
        ("broken.xlsx", b"PK\x03\x04 not really a zip", "file", "not a readable XLSX"),
    ]
    for name, content, field, words in cases:
        response = await upload(gateway.client, name, content)
        assert response.status_code == 422, (name, response.text)
        error = response.json()["errors"][0]
        assert error["field"] == field and words in error["reason"], (name, error)
    assert await message_count(gateway.settings.kafka_bootstrap_servers, gateway.state.topics.raw("energy")) == 0


async def test_form_errors_are_422(gateway: Gateway) -> None:
    content = csv_bytes(energy_table(3))
    no_stream = await gateway.client.post("/upload", files={"file": ("a.csv", content, "text/csv")})
    assert no_stream.status_code == 422 and no_stream.json()["errors"][0]["field"] == "stream"
    unknown = await upload(gateway.client, "a.csv", content, stream="weather")
    assert unknown.status_code == 422 and "unknown stream 'weather'" in unknown.json()["detail"]
    no_file = await gateway.client.post("/upload", data={"stream": "energy"}, files={"other": ("x", b"", "text/plain")})
    assert no_file.status_code == 422 and no_file.json()["errors"][0]["field"] == "other"
    only_fields = await gateway.client.post("/upload", data={"stream": "energy"})
    assert only_fields.status_code == 422
    not_multipart = await gateway.client.post("/upload", json={"stream": "energy"})
    assert not_multipart.status_code == 422 and "multipart/form-data" in not_multipart.json()["detail"]
    garbage = await gateway.client.post(
        "/upload", content=b"--x\r\ngarbage", headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert garbage.status_code == 422, garbage.text


async def test_zip_bomb_xlsx_is_refused_before_parsing(gateway: Gateway) -> None:
    bomb = zip_bomb_xlsx()
    assert len(bomb) < 1024 * 1024  # 64 MB of sheet in well under a megabyte
    response = await upload(gateway.client, "bomb.xlsx", bomb, content_type=XLSX_TYPE)
    assert response.status_code == 422, response.text
    reason = response.json()["errors"][0]["reason"]
    # The sheet is zeros, not XML: parsing it would have failed differently.
    assert "zip bomb" in reason and "compressed" in reason


async def test_xml_entity_expansion_is_refused(gateway: Gateway) -> None:
    response = await upload(gateway.client, "laughs.xlsx", billion_laughs_xlsx(), content_type=XLSX_TYPE)
    assert response.status_code == 422, response.text
    assert "EntitiesForbidden" in response.json()["errors"][0]["reason"]

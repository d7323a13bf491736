"""POST /upload: a CSV or XLSX file for a stream, validated row by row and published."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, Depends, Request
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from services.gateway import metrics, queries
from services.gateway.auth import require_api_key
from services.gateway.errors import UNAVAILABLE_ERRORS, ApiError, dependency, invalid, json_response
from services.gateway.idempotency import HEADER, checked_key, upload_dataset_id
from services.gateway.routes.common import stream_named
from services.gateway.schemas import AUTH_RESPONSES, ERROR_RESPONSES, ErrorBody, UploadAnswer
from services.gateway.settings import GatewaySettings
from services.gateway.state import GatewayState, get_state
from services.gateway.upload.csvfile import BadCsv, CsvLayout, Row, TooManyRows, chunks, inspect_csv, iter_rows
from services.gateway.upload.events import EncodedChunk, RowProblem, encode_chunk
from services.gateway.upload.filetype import FileType, UnsupportedFile, detect
from services.gateway.upload.receive import FILE_FIELD, BadForm, ReceivedFile, UploadTooLarge, receive_form
from services.gateway.upload.xlsx import UnreadableXlsx, UnsafeXlsx, XlsxLimits, check_archive, xlsx_to_csv
from shared.kafka.messages import Outgoing
from shared.streams import StreamSpec

log = structlog.get_logger(__name__)
router = APIRouter(tags=["data"])

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Room for the multipart framing and the stream field around the file itself.
_FORM_OVERHEAD = 64 * 1024

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD, "stream"],
                    "properties": {
                        FILE_FIELD: {"type": "string", "format": "binary",
                                     "description": "A .csv (UTF-8, header row) or .xlsx file (first sheet)."},
                        "stream": {"type": "string", "description": "The stream the rows belong to."},
                    },
                },
                "encoding": {FILE_FIELD: {"contentType": f"text/csv, {XLSX_CONTENT_TYPE}"}},
            }
        },
    }
}


@router.post(
    "/upload",
    summary="Upload a CSV or XLSX file of a stream's records",
    dependencies=[Depends(require_api_key)],
    response_model=UploadAnswer,
    responses={
        **ERROR_RESPONSES,
        **AUTH_RESPONSES,
        413: {"model": ErrorBody, "description": "The file is over MAX_UPLOAD_BYTES or MAX_UPLOAD_ROWS."},
        503: {"model": ErrorBody, "description": "Kafka or PostgreSQL did not take the upload (the answer says what "
              "was published); send it again, with the same Idempotency-Key."},
    },
    openapi_extra=_UPLOAD_BODY,
)
async def upload(request: Request, state: GatewayState = Depends(get_state)) -> Response:
    """Every row is validated against the stream; accepted rows are published to its raw
    topic (``source: upload`` with the dataset id) and the dataset is recorded. The
    answer lists the rejected rows with their row number (the header is row 1) and reason.

    `curl -F stream=houses -F file=@houses.csv -H "X-API-Key: $FLUXO_API_KEY" $FLUXO_URL/upload`
    """
    return json_response(await upload_table(request, state))


async def upload_table(request: Request, state: GatewayState) -> dict[str, Any]:
    """The upload itself (the API route and the console's upload form answer with it);
    raises ApiError for every refusal."""
    key = checked_key(request.headers.get(HEADER))
    async with received_table(request, state.settings) as (fields, file, file_type, csv_path):
        stream_name = fields.get("stream", "").strip()
        if not stream_name:
            raise invalid("stream", "missing: name the stream the rows belong to (" + ", ".join(state.catalog.names()) + ")")
        stream = stream_named(state, stream_name)
        try:
            layout = await asyncio.to_thread(inspect_csv, csv_path, stream, state.settings.max_upload_rows)
        except BadCsv as error:
            raise invalid(error.field, error.reason) from None
        except TooManyRows as error:
            raise ApiError(413, f"{error} (MAX_UPLOAD_ROWS)", limit_rows=state.settings.max_upload_rows) from None
        return await _publish(state, stream, file, file_type, csv_path, layout, key)


@contextlib.asynccontextmanager
async def received_table(
    request: Request, settings: GatewaySettings
) -> AsyncIterator[tuple[dict[str, str], ReceivedFile, FileType, Path]]:
    """A multipart upload's form fields and its file as CSV on disk (an XLSX is
    converted after its safety checks); the files are removed afterwards."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + _FORM_OVERHEAD:
        raise _too_large(settings)
    try:
        form = await receive_form(
            request.headers.get("content-type"), request.stream(), max_file_bytes=settings.max_upload_bytes
        )
    except UploadTooLarge:
        raise _too_large(settings) from None
    except BadForm as error:
        raise invalid(error.field, error.reason) from None
    except ClientDisconnect:
        raise ApiError(400, "the client went away during the upload") from None
    if form.file is None:
        raise invalid(FILE_FIELD, f"missing: send the file as the {FILE_FIELD!r} form field")
    file = form.file
    converted: Path | None = None
    try:
        if file.size == 0:
            raise invalid(FILE_FIELD, f"{file.filename!r} is an empty file")
        with file.path.open("rb") as handle:
            head = handle.read(8)
        try:
            file_type = detect(file.filename, head)
        except UnsupportedFile as error:
            raise invalid(FILE_FIELD, str(error)) from None
        csv_path = file.path
        if file_type is FileType.XLSX:
            converted = file.path.with_name(file.path.name + ".csv")
            csv_path = converted
            await asyncio.to_thread(_xlsx_as_csv, file.path, converted, settings)
        yield form.fields, file, file_type, csv_path
    finally:
        file.path.unlink(missing_ok=True)
        if converted is not None:
            converted.unlink(missing_ok=True)


def _too_large(settings: GatewaySettings) -> ApiError:
    return ApiError(
        413, f"the file is larger than the upload limit of {settings.max_upload_bytes} bytes (MAX_UPLOAD_BYTES)",
        limit_bytes=settings.max_upload_bytes,
    )


def _xlsx_as_csv(source: Path, target: Path, settings: GatewaySettings) -> None:
    try:
        check_archive(source, XlsxLimits(settings.max_xlsx_uncompressed_bytes, settings.max_xlsx_ratio))
        xlsx_to_csv(source, target, settings.max_upload_rows)
    except (UnsafeXlsx, UnreadableXlsx) as error:
        raise invalid(FILE_FIELD, str(error)) from None


def _next_encoded(parts: Iterator[list[Row]], stream: StreamSpec, dataset_id: str) -> EncodedChunk | None:
    chunk = next(parts, None)
    return None if chunk is None else encode_chunk(stream, chunk, dataset_id)


async def _publish(
    state: GatewayState, stream: StreamSpec, file: ReceivedFile, file_type: FileType, path: Path, layout: CsvLayout,
    key: str | None,
) -> dict[str, Any]:
    settings = state.settings
    timeout = settings.dependency_timeout_seconds
    topic = state.topics.raw(stream.name)
    dataset_id = upload_dataset_id(stream.name, key) if key is not None else uuid.uuid4().hex
    # Recorded before a single row is published: an upload PostgreSQL cannot
    # record publishes nothing, and one cut short stays 'publishing' (never
    # trained on) until a retry under the same key completes it.
    async with dependency("recording the upload", timeout):
        known = await queries.begin_dataset(
            state.pool, dataset_id=dataset_id, stream=stream.name, filename=file.filename,
            content_type=file.content_type, size_bytes=file.size, sha256=file.sha256, rows_total=layout.rows,
        )
    if known is not None:
        if known["sha256"] != file.sha256:
            raise invalid(HEADER, f"already used for a different file (dataset {dataset_id}, {known['filename']!r}): "
                          "use a new key for a new file")
        if known["status"] == "complete":
            log.info("upload_replayed", dataset_id=dataset_id, stream=stream.name)
            return _answer(dataset_id, stream, file, file_type, layout, topic, known["rows_accepted"],
                           known["rows_rejected"], [], replayed=True)
    parts = chunks(iter_rows(path, layout), settings.upload_chunk_rows)
    accepted = 0
    rejected: list[RowProblem] = []
    rejected_count = 0
    try:
        while True:
            # Parsing and validation run off the event loop: other requests keep being served.
            encoded = await asyncio.to_thread(_next_encoded, parts, stream, dataset_id)
            if encoded is None:
                break
            try:
                await state.publisher.send(
                    (Outgoing(topic, value, key_bytes) for key_bytes, value in encoded.messages), timeout)
            except UNAVAILABLE_ERRORS as error:
                log.error("upload_publish_failed", dataset_id=dataset_id, published=accepted, error=repr(error))
                raise ApiError(
                    503, f"Kafka did not take the rows ({type(error).__name__}); {accepted} rows were published "
                    f"under dataset {dataset_id} before the failure, which stays incomplete and is not trained on. "
                    + _retry_advice(key), dataset_id=dataset_id, rows_published=accepted,
                ) from None
            accepted += len(encoded.messages)
            rejected_count += len(encoded.rejected)
            room = settings.max_reported_rejects - len(rejected)
            rejected.extend(encoded.rejected[: max(room, 0)])
    finally:
        try:
            parts.close()
        except ValueError:
            pass  # cancelled while a worker thread still reads it; it ends with the thread
    try:
        async with asyncio.timeout(timeout):
            await queries.complete_dataset(state.pool, dataset_id, rows_accepted=accepted, rows_rejected=rejected_count)
    except UNAVAILABLE_ERRORS as error:
        log.error("upload_not_recorded", dataset_id=dataset_id, published=accepted, error=repr(error))
        raise ApiError(
            503, f"PostgreSQL could not record the upload as complete ({type(error).__name__}); its {accepted} rows "
            f"were published under dataset {dataset_id}, which stays incomplete and is not trained on. "
            + _retry_advice(key), dataset_id=dataset_id, rows_published=accepted,
        ) from None
    metrics.UPLOAD_ROWS.labels(stream.name, "accepted").inc(accepted)
    metrics.UPLOAD_ROWS.labels(stream.name, "rejected").inc(rejected_count)
    log.info("upload_done", dataset_id=dataset_id, stream=stream.name, file_type=file_type.value,
             accepted=accepted, rejected=rejected_count)
    return _answer(dataset_id, stream, file, file_type, layout, topic, accepted, rejected_count, rejected)


def _retry_advice(key: str | None) -> str:
    if key is not None:
        return (f"Send the file again with the same {HEADER}: its rows keep their event ids, so none is "
                "scored twice, and the dataset completes.")
    return (f"Send the file again (with an {HEADER} header, a retry republishes the same event ids and "
            "nothing is scored twice).")


def _answer(dataset_id: str, stream: StreamSpec, file: ReceivedFile, file_type: FileType, layout: CsvLayout,
            topic: str, accepted: int, rejected_count: int, rejected: list[RowProblem],
            *, replayed: bool = False) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "stream": stream.name,
        "filename": file.filename,
        "file_type": file_type.value,
        "size_bytes": file.size,
        "sha256": file.sha256,
        "rows_total": layout.rows,
        "rows_accepted": accepted,
        "rows_rejected": rejected_count,
        "rejected": [{"row": p.row, "field": p.field, "reason": p.reason} for p in rejected],
        "rejected_truncated": rejected_count > len(rejected),
        "ignored_columns": layout.ignored,
        "topic": topic,
        "replayed": replayed,
    }

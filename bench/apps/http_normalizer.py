"""Baseline 2, first hop: a normalizer endpoint that takes one raw event per
request, validates it and computes its features with Fluxo's own normalizer
code (a batch of one), then calls the predict endpoint with requests, as the
original stream project chained its services.

    PREDICT_URL=http://127.0.0.1:P/score PORT=... python -m bench.apps.http_normalizer
"""

from __future__ import annotations

import os
import threading

import requests
import uvicorn
from aiokafka.structs import ConsumerRecord
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import ORJSONResponse, Response

from services.normalizer.handler import Normalizer
from shared.streams import builtin_streams
from shared.streams.catalog import Catalog
from shared.topics import Topics

app = FastAPI(default_response_class=ORJSONResponse)
topics = Topics("http.")
catalog = Catalog(builtin_streams())
normalizer = Normalizer(topics, catalog)
predict_url = os.environ["PREDICT_URL"]
# The normalizer's scalers and rolling windows are shared state.
state_lock = threading.Lock()
local = threading.local()
offset = 0


def _session() -> requests.Session:
    session = getattr(local, "session", None)
    if session is None:
        session = local.session = requests.Session()
    return session


def _handle(stream: str, body: bytes) -> tuple[int, bytes]:
    global offset
    with state_lock:
        offset += 1
        record = ConsumerRecord(topics.raw(stream), 0, offset, 0, 0, None, body, None, 0, len(body), [])
        result = normalizer.handle([record])
    if result.rejected:
        return 422, result.rejected[0].reason.encode()
    answer = _session().post(predict_url, data=result.outputs[0].value, headers={"Content-Type": "application/json"})
    return answer.status_code, answer.content


@app.post("/ingest/{stream}")
async def ingest(stream: str, request: Request) -> Response:
    if stream not in catalog:
        return Response(status_code=404)
    status, content = await run_in_threadpool(_handle, stream, await request.body())
    return Response(content, status_code=status, media_type="application/json")


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", access_log=False)

"""Baseline 2, second hop: a predict endpoint scoring one features event per
request (the original stream project's design: one HTTP call per event).

It scores with the same ONNX bundles and the same scoring code as the
consumer (services.consumer.scoring on a batch of one), so the comparison
measures the per-event HTTP design, not a slower model. It writes
nothing to PostgreSQL, which only flatters this baseline.

    BENCH_MODELS=models.json ARTIFACT_DIR=... PORT=... python -m bench.apps.http_predict
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import ORJSONResponse

from services.consumer.decode import StreamBatch
from services.consumer.scoring import score_batch
from shared.ml.serving import ServingModel
from shared.streams import builtin_stream

app = FastAPI(default_response_class=ORJSONResponse)
artifact_dir = Path(os.environ["ARTIFACT_DIR"])
models = {
    (entry["stream"], entry["task"]): ServingModel.load(artifact_dir, entry["bundle_dir"], entry["sha256"])
    for entry in orjson.loads(Path(os.environ["BENCH_MODELS"]).read_bytes())
}


@app.post("/score")
async def score(request: Request) -> dict[str, object]:
    event = orjson.loads(await request.body())
    # The consumer's own scoring, on a batch of one event.
    results = score_batch(StreamBatch(builtin_stream(event["stream"]), events=[event]), models)
    predictions = [
        {
            "task": result.task.name,
            "prediction": float(result.prediction[0]),
            "score": None if result.score is None else float(result.score[0]),
        }
        for result in results
        if result.prediction is not None and len(result.rows)
    ]
    return {"event_id": event["event_id"], "predictions": predictions}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", access_log=False)

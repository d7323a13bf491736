"""The ceiling: a FastAPI endpoint that parses the same body and returns a
constant, served exactly like the gateway (uvicorn, one worker). The answer
is named like the original's, after the task's target (MODEL_TASK,
"stream/task" of a built-in declaration).

    MODEL_TASK=stream/task PORT=... python -m bench.apps.noop
"""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse

from shared.streams import builtin_stream

app = FastAPI(default_response_class=ORJSONResponse)
_stream, _, _task = os.environ["MODEL_TASK"].partition("/")
target = builtin_stream(_stream).task(_task).target or "prediction"


@app.post("/regress")
async def regress(body: dict[str, str | float]) -> dict[str, float]:
    return {target: 0.0}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", access_log=False)

"""The ceiling: a FastAPI endpoint that parses the same body and returns a
constant, served exactly like the gateway (uvicorn, one worker)."""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse

app = FastAPI(default_response_class=ORJSONResponse)


@app.post("/regress")
async def regress(body: dict[str, str | float]) -> dict[str, float]:
    return {"carbon_intensity_elec": 0.0}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", access_log=False)

"""Gateway: single-row /regress and /predict and the batch endpoint under
wrk's closed-loop load on 127.0.0.1, beside the Flask/pandas original and a
constant FastAPI endpoint, all with the same wrk settings."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from bench.context import Bench
from bench.datasets import synthetic
from bench.models import PreparedModel, register_models
from bench.procs import Fleet, fleet, wait_until
from bench.services import service_env
from bench.wrk import run_wrk
from services.gateway.schemas import PREDICT_EXAMPLE, REGRESS_EXAMPLE
from shared.infra.ports import free_port
from bench.streams import ENERGY

WARMUP_S = 2


def batch_body(rows: int) -> dict[str, Any]:
    """``rows`` energy records for the carbon task, as numbers."""
    task = ENERGY.task("carbon")
    X, _ = synthetic(ENERGY.name, rows, seed=17).task(task)
    return {"task": task.name, "records": [dict(zip(task.features, map(float, row))) for row in X.tolist()]}


def _answers(url: str, body: dict[str, Any]) -> bool:
    try:
        return httpx.post(url, json=body, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _load(url: str, body: dict[str, Any], bench: Bench, connections: int | None = None) -> dict[str, Any]:
    text = orjson.dumps(body).decode()
    plan = bench.plan
    connections = connections or plan.wrk_connections
    run_wrk(url, text, seconds=WARMUP_S if not plan.quick else 1, connections=connections)
    return run_wrk(url, text, seconds=plan.wrk_seconds, connections=connections).as_dict()


def _gateway(group: Fleet, bench: Bench, dsn: str) -> str:
    port = free_port()
    env = service_env(bench, bench.prefix("gateway"), dsn, "gateway", GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(port))
    group.service("gateway", "services.gateway", env)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/ready", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, 120, "the gateway was not ready", group)
    return url


async def gateway(bench: Bench, prepared: dict[tuple[str, str], PreparedModel]) -> dict[str, Any]:
    plan = bench.plan
    result: dict[str, Any] = {"wrk": {"seconds": plan.wrk_seconds, "connections": plan.wrk_connections, "threads": 1}}
    carbon = prepared[(ENERGY.name, "carbon")]
    batch = batch_body(plan.batch_rows)
    async with bench.database("gateway") as dsn:
        await register_models(dsn, prepared)
        with fleet(bench.logdir("gateway")) as group:
            url = await asyncio.to_thread(_gateway, group, bench, dsn)
            for name, path, body in (("regress", "/regress", REGRESS_EXAMPLE), ("predict", "/predict", PREDICT_EXAMPLE),
                                     ("batch", f"/v1/streams/{ENERGY.name}/predict", batch)):
                if not _answers(url + path, body):
                    raise RuntimeError(f"the gateway does not answer {path} with 200")
                result[name] = await asyncio.to_thread(_load, url + path, body, bench)
            # One connection: the time a request takes with no queue in front of it.
            result["regress_1_connection"] = await asyncio.to_thread(_load, url + "/regress", REGRESS_EXAMPLE, bench, 1)
            result["batch"]["rows_per_request"] = plan.batch_rows
            result["batch_rows_per_s"] = round(result["batch"]["rps"] * plan.batch_rows, 1)
            result["memory_mb"] = group.memory_mb()["gateway"]
            group.stop(group.procs[0])
    with fleet(bench.logdir("gateway-baselines")) as group:
        for name, module, env in (
            ("flask_pandas", "bench.apps.flask_pandas", {
                "MODEL_JOBLIB": str(carbon.joblib_path(bench.artifact_dir)),
                "MODEL_FEATURES": ",".join(carbon.meta.features),
            }),
            ("noop", "bench.apps.noop", {}),
        ):
            port = free_port()
            proc = group.start(name, ["-m", module], {**env, "PORT": str(port)})
            target = f"http://127.0.0.1:{port}/regress"
            await asyncio.to_thread(wait_until, lambda t=target: _answers(t, REGRESS_EXAMPLE), 60,
                                    f"{name} does not answer", group)
            result[name] = await asyncio.to_thread(_load, target, REGRESS_EXAMPLE, bench)
            result[name]["memory_mb"] = group.memory_mb()[name]
            group.stop(proc)
    return result

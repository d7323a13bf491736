"""Gateway: single-row /regress and /predict and the batch endpoint under
wrk's closed-loop load on 127.0.0.1, beside the Flask/pandas original and a
constant FastAPI endpoint, all with the same wrk settings.

The single-row bodies are the first examples of the tasks the original
routes answer for (the gateway's LEGACY_REGRESSION_TASK and
LEGACY_CLUSTER_TASK, declared in the built-in declarations); the batch
endpoint gets generator records of the /regress task."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from bench.context import Bench
from bench.datasets import synthetic_rows
from bench.models import PreparedModel, register_models
from bench.procs import Fleet, fleet, wait_until
from bench.services import service_env
from bench.wrk import run_wrk
from services.gateway.settings import LEGACY_CLUSTER_TASK, LEGACY_REGRESSION_TASK
from shared.infra.ports import free_port
from shared.ml.dataset import task_data
from shared.streams import StreamSpec, TaskSpec, builtin_stream

WARMUP_S = 2


def legacy_task(setting: str) -> tuple[StreamSpec, TaskSpec]:
    """The built-in stream and task of a legacy route's setting ("stream/task")."""
    stream, _, task = setting.partition("/")
    spec = builtin_stream(stream)
    return spec, spec.task(task)


def example_body(setting: str) -> dict[str, Any]:
    """The declared first example of the task: the original API's body."""
    _, task = legacy_task(setting)
    return dict(task.examples[0])


def batch_body(spec: StreamSpec, task: TaskSpec, rows: int) -> dict[str, Any]:
    """``rows`` generator records carrying every input of ``task``, as the
    inputs only (numbers, and labels of category inputs)."""
    sample = synthetic_rows(spec.name, rows * 2, seed=17)
    usable = task_data(spec, task, sample).kept
    if usable is None or len(usable) < rows:
        raise RuntimeError(f"{rows * 2} generator records of {spec.name} hold fewer than {rows} usable for {task.name}")
    records = []
    for i in usable[:rows].tolist():
        values = {**sample[i]["features"], **sample[i]["categories"]}
        records.append({name: values[name] for name in task.features})
    return {"task": task.name, "records": records}


def _answer(url: str, body: dict[str, Any]) -> str | None:
    """None when ``url`` answers ``body`` with 200, else what it did answer."""
    try:
        answer = httpx.post(url, json=body, timeout=5)
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}"
    return None if answer.status_code == 200 else f"{answer.status_code} {answer.text[:300]}"


def _answers(url: str, body: dict[str, Any]) -> bool:
    return _answer(url, body) is None


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
    stream, task = legacy_task(LEGACY_REGRESSION_TASK)
    regression = prepared[(stream.name, task.name)]
    regress_body, predict_body = example_body(LEGACY_REGRESSION_TASK), example_body(LEGACY_CLUSTER_TASK)
    batch = batch_body(stream, task, plan.batch_rows)
    async with bench.database("gateway") as dsn:
        await register_models(dsn, prepared)
        with fleet(bench.logdir("gateway")) as group:
            url = await asyncio.to_thread(_gateway, group, bench, dsn)
            for name, path, body, answers_for in (
                ("regress", "/regress", regress_body, LEGACY_REGRESSION_TASK),
                ("predict", "/predict", predict_body, LEGACY_CLUSTER_TASK),
                ("batch", f"/v1/streams/{stream.name}/predict", batch, f"{stream.name}/{task.name}"),
            ):
                refused = _answer(url + path, body)
                if refused is not None:
                    raise RuntimeError(f"the gateway does not answer {path} with 200: {refused}")
                result[name] = await asyncio.to_thread(_load, url + path, body, bench)
                result[name]["task"] = answers_for
            # One connection: the time a request takes with no queue in front of it.
            result["regress_1_connection"] = await asyncio.to_thread(_load, url + "/regress", regress_body, bench, 1)
            result["batch"]["rows_per_request"] = len(batch["records"])
            result["batch_rows_per_s"] = round(result["batch"]["rps"] * len(batch["records"]), 1)
            result["memory_mb"] = group.memory_mb()["gateway"]
            group.stop(group.procs[0])
    with fleet(bench.logdir("gateway-baselines")) as group:
        for name, module, env in (
            ("flask_pandas", "bench.apps.flask_pandas", {
                "MODEL_JOBLIB": str(regression.joblib_path(bench.artifact_dir)),
                "MODEL_FEATURES": ",".join(regression.meta.features),
                "MODEL_TASK": LEGACY_REGRESSION_TASK,
            }),
            ("noop", "bench.apps.noop", {"MODEL_TASK": LEGACY_REGRESSION_TASK}),
        ):
            port = free_port()
            proc = group.start(name, ["-m", module], {**env, "PORT": str(port)})
            target = f"http://127.0.0.1:{port}/regress"
            await asyncio.to_thread(wait_until, lambda t=target: _answers(t, regress_body), 60,
                                    f"{name} does not answer", group)
            result[name] = await asyncio.to_thread(_load, target, regress_body, bench)
            result[name]["memory_mb"] = group.memory_mb()[name]
            group.stop(proc)
    return result

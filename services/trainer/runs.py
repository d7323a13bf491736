"""One training run, start to finish: data, candidate, decision, bundle,
registry, models event, run row.

Runs are serialised (one at a time: the machine has two cores) and the
heavy part runs in a worker thread, so the event loop keeps the Kafka
clients heartbeating. A request that cannot succeed (unknown stream, task or
algorithm, bad hyperparameters, too few rows, an ONNX graph that does not
match) marks its run failed with the reason; an unreachable database or
broker propagates, so the caller retries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import joblib
import structlog
from aiokafka import AIOKafkaProducer

from services.trainer import metrics
from services.trainer.candidate import (
    SHADOW,
    Candidate,
    Decision,
    build_candidate,
    champion_model,
    decide,
    paired_scores,
    read_holdout,
    seen_by,
    variant_files,
)
from services.trainer.dataset_scan import DatasetScanError, scan_dataset
from services.trainer.lake_source import lake_rows
from services.trainer.settings import TrainerSettings
from services.trainer.window import StreamWindow, decode_entries, window_offsets
from shared.events import TrainCommand
from shared.kafka.loop import DEFAULT_TRANSIENT
from shared.ml import registry
from shared.ml.bundle import BundleIntegrityError, write_bundle
from shared.ml.dataset import task_data
from shared.ml.export import OnnxMismatchError, export
from shared.ml.hyperparams import HyperparameterError, resolve
from shared.ml.publish import bundle_meta, publish_model
from shared.ml.serving import ServingModel
from shared.retry import TRANSIENT_POSTGRES, transient_os_error
from shared.ml.training import NotEnoughData, TrainingError, refit_all, resolve_algorithm
from shared.streams import StreamSpec, TaskSpec
from shared.streams.catalog import Catalog
from shared.topics import Topics

log = structlog.get_logger(__name__)

# Requests that can never succeed as asked: the run fails with the message.
REQUEST_ERRORS: tuple[type[Exception], ...] = (TrainingError, HyperparameterError, OnnxMismatchError, DatasetScanError)

# Database or broker unreachable, or the disk full: the run is retried (its
# command is not committed), not failed. A file error that waiting does not
# fix (a permission refused on the artifact directory, a path that is not a
# directory, a read-only file system) fails the run with the reason instead:
# retried, it would block the commands topic forever (shared.retry decides
# by errno; ENOSPC is transient there).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (*DEFAULT_TRANSIENT, *TRANSIENT_POSTGRES)


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_ERRORS) or transient_os_error(error)


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    stream: str
    task: str
    algorithm: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    window: int | None = None
    dataset_id: str | None = None
    source: str | None = None  # an export id or a lake address (services.trainer.lake_source)
    test_size: float = 0.2
    force: bool = False
    deploy: str | None = None  # champion | shadow; None: the task's declared default
    trigger: str = "command"
    reason: str = ""

    @classmethod
    def from_command(cls, command: TrainCommand) -> RunRequest:
        return cls(
            run_id=command.run_id,
            stream=command.stream,
            task=command.task,
            algorithm=command.algorithm,
            hyperparameters=dict(command.hyperparameters),
            window=command.window,
            dataset_id=command.dataset_id,
            source=command.source,
            test_size=command.test_size,
            force=command.force,
            deploy=command.deploy,
            trigger=command.trigger,
            reason=command.reason,
        )

    def describe(self) -> dict[str, Any]:
        """The request as stored in training_runs.request."""
        described = asdict(self)
        for name in ("run_id", "stream", "task", "trigger"):
            described.pop(name)
        return described


def resolve_request(catalog: Catalog, request: RunRequest) -> tuple[StreamSpec, TaskSpec]:
    """Check everything that needs no data; raises TrainingError naming the fault."""
    try:
        stream = catalog.get(request.stream)
        task = stream.task(request.task)
    except KeyError as error:
        raise TrainingError(str(error.args[0])) from None
    resolve(resolve_algorithm(task, request.algorithm), request.hyperparameters, task.kind)
    return stream, task


@dataclass(frozen=True)
class RunOutcome:
    status: str  # done | failed | skipped
    model_id: int | None = None
    version: int | None = None
    decision: Decision | None = None
    error: str | None = None


def _fit(
    stream: StreamSpec, task: TaskSpec, request: RunRequest, rows: list[dict[str, Any]], seed: int, min_rows: int
) -> tuple[Candidate, int]:
    """The candidate (with its variants) and the rows it used."""
    data = task_data(stream, task, rows)
    if data.rows < min_rows:
        raise NotEnoughData(
            f"{data.rows} usable rows for {request.stream}/{task.name} "
            f"({data.dropped} of {len(rows)} events lack a feature or the target); at least {min_rows} are needed"
        )
    candidate = build_candidate(
        task, request.algorithm, data, rows, request.hyperparameters, request.test_size, seed, min_rows,
        variant_data=lambda reduced: task_data(stream, reduced, rows),
    )
    return candidate, data.rows


def _refit(stream: StreamSpec, task: TaskSpec, candidate: Candidate, rows: list[dict[str, Any]], seed: int) -> Candidate:
    """The validated candidate fitted again on every row, its held-out ones
    included; its metrics stay those of the validation."""
    data = task_data(stream, task, rows, inputs=candidate.result.inputs, classes=candidate.result.classes)
    refitted = refit_all(candidate.result, data.X, data.y, seed)
    return Candidate(refitted, export(refitted)[0], candidate.score, [], candidate.variants)


def _gate(artifact_dir: Path, stream: StreamSpec, task: TaskSpec, candidate: Candidate, meta: Any,
          champion: registry.ModelRecord, min_rows: int) -> Any:
    """Both models' scores on the candidate's held-out events the champion never trained on."""
    model = champion_model(artifact_dir, champion)
    if model is None:
        return None
    try:
        holdout = read_holdout(artifact_dir, champion)
    except BundleIntegrityError as error:
        log.warning("champion_holdout_refused", model_id=champion.id, reason=str(error))
        holdout = set()
    seen = seen_by(champion.training_window, holdout)
    unseen = [event for event in candidate.test_events if not seen(event)]
    trial = ServingModel(meta, candidate.onnx_bytes, None, variant_files(candidate))
    return paired_scores(stream, task, trial, model, unseen)


class Trainer:
    def __init__(
        self,
        settings: TrainerSettings,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        topics: Topics,
        catalog: Catalog,
        windows: dict[str, StreamWindow],
        window_ready: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.pool = pool
        self.producer = producer
        self.topics = topics
        self.windows = windows
        self.window_ready = window_ready
        self.artifact_dir = Path(settings.artifact_dir)
        self._lock = asyncio.Lock()

    async def execute(
        self, request: RunRequest, data: tuple[list[dict[str, Any]], dict[str, Any]] | None = None
    ) -> RunOutcome:
        """Run ``request`` unless its run already finished (a redelivered
        command). ``data`` is (rows, where they came from) when the caller
        already holds them; otherwise the request says where to read."""
        await registry.queue_run(
            self.pool, request.run_id, request.stream, request.task, request.algorithm, request.describe(), request.trigger
        )
        run = await registry.get_run(self.pool, request.run_id)
        if run is not None and run.status in ("done", "failed"):
            log.info("run_already_finished", run_id=request.run_id, status=run.status)
            return RunOutcome("skipped")
        async with self._lock:
            if not await registry.claim_run(self.pool, request.run_id):
                # Abandoned by the gateway (its command was sent late) or
                # finished while this one waited for the lock.
                run = await registry.get_run(self.pool, request.run_id)
                log.info("run_not_claimed", run_id=request.run_id, status=run.status if run else None,
                         error=run.error if run else None)
                return RunOutcome("skipped")
            started = time.perf_counter()
            try:
                outcome = await self._run(request, data)
            except REQUEST_ERRORS as error:
                return await self._fail(request, str(error))
            except Exception as error:  # noqa: BLE001 - a bug in one run must not stop the trainer
                if is_transient(error):
                    raise
                if isinstance(error, OSError):
                    return await self._fail(request, f"file error: {type(error).__name__}: {error}")
                log.exception("training_run_crashed", run_id=request.run_id)
                return await self._fail(request, f"internal error: {type(error).__name__}: {error}")
        assert outcome.decision is not None
        algorithm = request.algorithm or self.catalog.get(request.stream).task(request.task).default.value
        metrics.TRAINING_DURATION.labels(request.stream, request.task, algorithm).observe(time.perf_counter() - started)
        metrics.TRAINING_RUNS.labels(request.stream, request.task, "done").inc()
        return outcome

    async def _fail(self, request: RunRequest, reason: str) -> RunOutcome:
        log.warning("training_run_failed", run_id=request.run_id, stream=request.stream, task=request.task, reason=reason)
        await registry.fail_run(self.pool, request.run_id, reason)
        metrics.TRAINING_RUNS.labels(request.stream, request.task, "failed").inc()
        return RunOutcome("failed", error=reason)

    async def _rows(self, request: RunRequest, stream: StreamSpec) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        topic = self.topics.features(stream.name)
        if request.source is not None:
            return await lake_rows(self.pool, self.settings, request.source, stream.name,
                                   max_rows=self.settings.train_dataset_max_rows,
                                   timeout=self.settings.train_dataset_scan_timeout)
        if request.dataset_id is not None:
            dataset = await self.pool.fetchrow(
                "SELECT created_at, rows_accepted, status FROM datasets WHERE id = $1", request.dataset_id)
            since = dataset["created_at"] if dataset else None
            # The rows the upload published (known once it completed): the
            # scan waits for the normalizer to have turned them all into features.
            expected = dataset["rows_accepted"] if dataset and dataset["status"] == "complete" else None
            rows, where = await scan_dataset(
                self.settings.kafka_bootstrap_servers,
                topic,
                request.dataset_id,
                since=since,
                max_rows=self.settings.train_dataset_max_rows,
                timeout=self.settings.train_dataset_scan_timeout,
                client_id=f"{self.settings.service_name}-dataset",
                expected=expected,
                wait=self.settings.train_dataset_wait_seconds,
            )
            if where.get("complete") is False:
                log.warning("dataset_incomplete", run_id=request.run_id, dataset_id=request.dataset_id,
                            expected=where["rows_expected"], found=where["rows_found"], waited_s=where["waited_s"])
            if not rows:
                raise NotEnoughData(f"no features events of dataset {request.dataset_id} on {topic}")
            return rows, where
        return await self.window_rows(stream.name, request.window)

    async def window_rows(self, stream: str, last: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The newest ``last`` events of the stream's window, decoded, and
        where they are in the log."""
        window = self.windows.get(stream)
        if window is None:
            raise TrainingError(f"this trainer does not keep a window of stream {stream!r}")
        await self.window_ready.wait()
        entries = window.snapshot(last)
        rows = await asyncio.to_thread(decode_entries, entries, window.labels)
        return rows, {**window_offsets(window.topic, entries), "requested": last or window.size}

    async def _run(self, request: RunRequest, data: tuple[list[dict[str, Any]], dict[str, Any]] | None) -> RunOutcome:
        stream, task = resolve_request(self.catalog, request)
        rows, where = data if data is not None else await self._rows(request, stream)
        min_rows = self.settings.train_min_rows if request.trigger == "schedule" else self.settings.train_command_min_rows
        seed = self.settings.train_seed
        candidate, usable = await asyncio.to_thread(_fit, stream, task, request, rows, seed, min_rows)
        deploy = request.deploy or task.deploy
        champion = await registry.active_model(self.pool, stream.name, task.name)
        version = await registry.next_version(self.pool, stream.name, task.name)
        training_window = {**where, "rows": usable, "trigger": request.trigger, "run_id": request.run_id}
        variants = [(v.without, v.result) for v in candidate.variants]
        meta = bundle_meta(stream.name, candidate.result, version, training_window, variants)
        if deploy == SHADOW and champion is not None and not request.force:
            decision = Decision(SHADOW, False, candidate.score, None, "deployed as shadow: judged live beside the champion")
        else:
            paired = None
            if champion is not None:  # forced runs are scored too, so the record shows what was overruled
                paired = await asyncio.to_thread(
                    _gate, self.artifact_dir, stream, task, candidate, meta, champion, self.settings.train_gate_min_rows
                )
            decision = decide(paired, force=request.force, tolerance=self.settings.train_not_worse_tolerance,
                              min_rows=self.settings.train_gate_min_rows, has_champion=champion is not None)
        if decision.candidate_score is None:  # nothing to pair with: its score on all its held-out rows
            decision = dataclasses.replace(decision, candidate_score=candidate.score)
        holdout = [str(event.get("event_id")) for event in candidate.test_events]
        if task.refit and decision.activate:
            candidate = await asyncio.to_thread(_refit, stream, task, candidate, rows, seed)
            meta = meta.model_copy(update={"training_window": {**training_window, "refit": True}})
            holdout = []
        relative, hashes, size = await asyncio.to_thread(
            write_bundle, self.artifact_dir, meta, candidate.onnx_bytes, partial(joblib.dump, candidate.result.pipeline),
            holdout, variant_files(candidate),
        )
        record = await registry.insert_bundle(
            self.pool, meta, relative, hashes, size, activate=decision.activate, shadow=decision.decision == SHADOW,
            run_id=request.run_id, trigger=request.trigger, actor="trainer",
            reason=f"{decision.decision}: {decision.reason}" + (f" ({request.reason})" if request.reason else ""),
        )
        if decision.activate or decision.decision == SHADOW:
            await publish_model(self.producer, self.topics, record)
        if decision.activate:
            metrics.ACTIVE_VERSION.labels(stream.name, task.name).set(version)
        await registry.finish_run(
            self.pool,
            request.run_id,
            model_id=record.id,
            metrics=meta.metrics,
            decision=decision.decision,
            candidate_score=decision.candidate_score,
            active_score=decision.active_score,
            gate_rows=decision.rows,
            reason=decision.reason,
        )
        for name, value in meta.metrics.items():
            metrics.MODEL_METRIC.labels(stream.name, task.name, name).set(value)
        log.info(
            "model_trained",
            run_id=request.run_id,
            stream=stream.name,
            task=task.name,
            algorithm=meta.algorithm,
            version=version,
            rows=usable,
            variants=[v.without for v in candidate.variants],
            decision=decision.decision,
            reason=decision.reason,
            gate_rows=decision.rows,
            candidate_score=decision.candidate_score,
            active_score=decision.active_score,
        )
        return RunOutcome("done", record.id, version, decision)

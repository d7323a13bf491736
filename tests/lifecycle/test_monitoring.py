"""Drift, degradation and shadow verdicts as pure functions: PSI over bins
fixed at training, the monitor's wait for fresh events before it asks for a
retrain, and the shadow judge's rule; and, against the registry, what holds
a retrain back once it is due."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.consumer.monitoring import DEGRADED, DRIFT, ModelMonitor, Monitoring, validation_error
from services.consumer.scoring import score_batch
from services.trainer.shadows import judge
from shared.ml.drift import DriftMonitor, psi, reference
from shared.kafka import make_producer
from shared.ml.inputs import InputColumn
from shared.ml.serving import ServingModel
from shared.streams import builtin_streams
from shared.streams.catalog import Catalog
from shared.topics import Topics
from tests.live import Database
from tests.ml.factory import register, serving_model
from tests.ml.synthetic import features_events
from tests.streams import ENERGY
from tests.consumer.test_scoring import _batch


def test_psi_is_near_zero_for_the_training_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    inputs = [InputColumn(name="x", kind="number"), InputColumn(name="c", kind="category", values=["a", "b"])]
    train = np.column_stack([rng.normal(100, 10, 5000), *_one_hot(rng.choice(3, 5000, p=[0.6, 0.3, 0.1]), 3)])
    refs = reference(inputs, train)
    assert len(refs["x"].expected) == 10 and sum(refs["x"].expected) == pytest.approx(1)
    same = DriftMonitor(inputs, refs, window=1000)
    same.update(np.column_stack([rng.normal(100, 10, 1000), *_one_hot(rng.choice(3, 1000, p=[0.6, 0.3, 0.1]), 3)]))
    assert max(same.values().values()) < 0.05
    shifted = DriftMonitor(inputs, refs, window=1000)
    shifted.update(np.column_stack([rng.normal(150, 10, 1000), *_one_hot(rng.choice(3, 1000, p=[0.1, 0.3, 0.6]), 3)]))
    values = shifted.values()
    assert values["x"] > 1.0 and values["c"] > 0.25
    # The window forgets: the shifted rows pushed out by normal ones bring it back.
    shifted.update(np.column_stack([rng.normal(100, 10, 1000), *_one_hot(rng.choice(3, 1000, p=[0.6, 0.3, 0.1]), 3)]))
    assert max(shifted.values().values()) < 0.05 and shifted.seen == 1000
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0


def _one_hot(picks: np.ndarray, width: int) -> list[np.ndarray]:
    return [(picks == j).astype(float) for j in range(width)]


def _carbon_monitor(window: int = 1000) -> tuple[ModelMonitor, object]:
    model = serving_model(ENERGY, "carbon", n=600)
    return ModelMonitor.of(ENERGY.task("carbon"), model, window), model


def _scores(model, events):  # noqa: ANN001, ANN202
    (result,) = [r for r in score_batch(_batch("energy", events), {("energy", "carbon"): model}) if r.task.name == "carbon"]
    return result


def test_degradation_asks_for_a_retrain_only_after_retrain_window_fresh_events() -> None:
    monitor, model = _carbon_monitor()
    policy = monitor.task.monitor
    reference_error = validation_error(monitor.task, model)
    assert reference_error is not None and reference_error > 0
    events = features_events(ENERGY, 400, seed=11)
    monitor.observe(_scores(model, events))
    assert monitor.crossing() is None and monitor.verdict() is None
    assert monitor.state()["degradation"] < policy.degradation  # same distribution as training
    # The outcome changes (concept drift): every actual 1.5 times what it was.
    target = monitor.task.target
    drifted = [e.model_copy(update={"targets": {target: e.targets[target] * 1.5}}) for e in features_events(ENERGY, 400, 12)]
    monitor.observe(_scores(model, drifted))
    assert monitor.crossing() is not None and monitor.crossing()[0] == DEGRADED
    assert monitor.verdict() is None  # crossed just now: wait for fresh events to learn from
    seen = 0
    while seen < policy.retrain_window:
        batch = [e.model_copy(update={"targets": {target: e.targets[target] * 1.5}})
                 for e in features_events(ENERGY, 500, 100 + seen)]
        monitor.observe(_scores(model, batch))
        seen += len(batch)
        if seen < policy.retrain_window:
            assert monitor.verdict() is None
    trigger, reason = monitor.verdict()
    assert trigger == DEGRADED and "validation error" in reason and "since it was first crossed" in reason


def test_drift_is_an_input_that_moved_and_a_dip_below_the_threshold_resets_the_wait() -> None:
    model = serving_model(ENERGY, "cluster", n=600)
    monitor = ModelMonitor.of(ENERGY.task("cluster"), model, 500)
    task = ENERGY.task("cluster")
    moved = task.features[0]

    def results(events):  # noqa: ANN001, ANN202
        (result,) = [r for r in score_batch(_batch("energy", events), {("energy", "cluster"): model})
                     if r.task.name == "cluster"]
        return result

    monitor.observe(results(features_events(ENERGY, 500, seed=2)))
    assert monitor.crossing() is None
    shifted = [e.model_copy(update={"features": {**e.features, moved: min(100.0, e.features[moved] * 3 + 30)}})
               for e in features_events(ENERGY, 500, seed=3)]
    monitor.observe(results(shifted))
    trigger, reason = monitor.crossing()
    assert trigger == DRIFT and moved in reason
    assert monitor.verdict() is None and monitor.crossed_at is not None
    monitor.observe(results(features_events(ENERGY, 500, seed=4)))  # back to normal: the wait starts over
    assert monitor.verdict() is None and monitor.crossed_at is None


def test_the_shadow_judge() -> None:
    assert judge(150, 1.0, 2.0, 200, 0.05).outcome == "waiting"
    assert judge(250, None, 2.0, 200, 0.05).outcome == "waiting"
    assert judge(250, 2.05, 2.0, 200, 0.05).outcome == "promoted"  # within the tolerance
    worse = judge(250, 2.2, 2.0, 200, 0.05)
    assert worse.outcome == "retired" and "worse" in worse.reason and "250" in worse.reason



async def test_a_retrain_is_not_asked_again_while_one_is_pending_or_the_champion_was_replaced(
    kafka_bootstrap: str, database: Database, topics: Topics, tmp_path: Path
) -> None:
    pool = database.pool
    record = await register(pool, tmp_path, ENERGY, "carbon", n=300)
    model = ServingModel.load(tmp_path, record.bundle_dir, record.sha256, record.id)
    monitor = ModelMonitor.of(ENERGY.task("carbon"), model, 100)
    monitoring = Monitoring(Catalog(builtin_streams()), 100)
    producer = make_producer(kafka_bootstrap, "test-monitoring")
    await producer.start()

    async def ask() -> str | None:
        monitoring._last_trigger.clear()  # the in-process cooldown; the registry's is what is tested
        # Every earlier retrain asked for long before the cooldown.
        await pool.execute("UPDATE training_runs SET requested_at = now() - interval '1 day'")
        command = await monitoring._trigger(pool, producer, topics, "energy", monitor, DEGRADED, "worse")
        return command.run_id if command else None

    try:
        first = await ask()
        assert first is not None
        assert await ask() is None  # still queued: no trainer took it yet
        await pool.execute("UPDATE training_runs SET status = 'running' WHERE run_id = $1", first)
        assert await ask() is None
        await pool.execute("UPDATE training_runs SET status = 'done' WHERE run_id = $1", first)
        second = await ask()  # done, the champion unchanged and still degraded: asked again
        assert second is not None and second != first
        await pool.execute("UPDATE training_runs SET status = 'done' WHERE run_id = $1", second)
        await register(pool, tmp_path, ENERGY, "carbon", n=300, seed=1)  # the retrain became the champion
        assert await ask() is None  # this consumer has not swapped yet: the old champion is not judged
    finally:
        await producer.stop()
    triggers = await pool.fetch("SELECT trigger FROM training_runs ORDER BY requested_at")
    assert [r["trigger"] for r in triggers] == [DEGRADED, DEGRADED]

"""Candidates, their variants and the honest gate, without a broker."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import spearmanr

from services.trainer.candidate import (
    ACTIVATED,
    FORCED,
    REJECTED,
    UNDECIDED,
    PairedScores,
    build_candidate,
    decide,
    optional_subsets,
    paired_scores,
    seen_by,
    variant_files,
)
from shared.ml.dataset import task_data
from shared.ml.inputs import event_inputs
from shared.ml.publish import bundle_meta
from shared.ml.serving import ServingModel
from tests.generator.streams import energy
from tests.ml.synthetic import synthetic_rows
from tests.streams import ENERGY, PEOPLE


def _rows(stream, n: int, seed: int, first_offset: int = 0) -> list[dict[str, Any]]:
    """Synthetic features events as the trainer decodes them: ids, and their place in the log."""
    rows = synthetic_rows(stream, n, seed)
    for i, row in enumerate(rows):
        row["event_id"] = f"e{seed}-{first_offset + i}"
        row["_partition"], row["_offset"] = 0, first_offset + i
    return rows


def _candidate(stream, task_name: str, rows, algorithm: str, params: dict, seed: int = 0):
    task = stream.task(task_name)
    data = task_data(stream, task, rows)
    return build_candidate(task, algorithm, data, rows, params, 0.2, seed, 20,
                           variant_data=lambda reduced: task_data(stream, reduced, rows))


def _serving(candidate, stream_name: str) -> ServingModel:
    meta = bundle_meta(stream_name, candidate.result, 1, {}, [(v.without, v.result) for v in candidate.variants])
    return ServingModel(meta, candidate.onnx_bytes, 1, variant_files(candidate))


def test_decide() -> None:
    evidence = PairedScores(100, 0.80, 0.805)
    assert decide(None, force=False, tolerance=0.01, min_rows=30, has_champion=False).decision == ACTIVATED
    assert decide(None, force=False, tolerance=0.01, min_rows=30, has_champion=True).decision == ACTIVATED  # unreadable
    kept = decide(evidence, force=False, tolerance=0.01, min_rows=30, has_champion=True)
    assert (kept.decision, kept.activate, kept.rows) == (ACTIVATED, True, 100)
    worse = decide(PairedScores(100, 0.70, 0.80), force=False, tolerance=0.01, min_rows=30, has_champion=True)
    assert (worse.decision, worse.activate, worse.candidate_score, worse.active_score) == (REJECTED, False, 0.70, 0.80)
    few = decide(PairedScores(12, 0.99, 0.10), force=False, tolerance=0.01, min_rows=30, has_champion=True)
    assert (few.decision, few.activate) == (UNDECIDED, False)
    assert "only 12 held-out labelled events neither model was trained on" in few.reason
    forced = decide(PairedScores(100, 0.70, 0.80), force=True, tolerance=0.01, min_rows=30, has_champion=True)
    assert (forced.decision, forced.activate) == (FORCED, True)


def test_what_a_champion_saw() -> None:
    window = {"partitions": {"0": [100, 199], "1": [0, 49]}}
    seen = seen_by(window, holdout={"held"})
    assert seen({"event_id": "a", "_partition": 0, "_offset": 150})
    assert not seen({"event_id": "b", "_partition": 0, "_offset": 200})  # newer than its window
    assert not seen({"event_id": "c", "_partition": 2, "_offset": 5})  # a partition it never read
    assert not seen({"event_id": "held", "_partition": 0, "_offset": 150})  # its own held-out row
    assert seen_by({**window, "refit": True}, {"held"})({"event_id": "held", "_partition": 0, "_offset": 150})
    dataset = seen_by({"dataset_id": "d1"}, set())
    assert dataset({"event_id": "x", "dataset_id": "d1"}) and not dataset({"event_id": "y", "dataset_id": "d2"})


def test_a_champion_trained_on_the_candidates_holdout_is_not_scored_on_them() -> None:
    # The champion was trained on every row of the window (refit), the
    # candidate's held-out rows included: scored on them, the champion would
    # be judged in-sample. The gate leaves them out, so there is no evidence.
    rows = _rows(PEOPLE, 400, seed=3)
    task = PEOPLE.task("income")
    champion = _candidate(PEOPLE, "income", rows, "random_forest", {"n_estimators": 30}, seed=1)
    candidate = _candidate(PEOPLE, "income", rows, "random_forest", {"n_estimators": 30}, seed=2)
    champion_window = {"partitions": {"0": [0, 399]}, "refit": True}
    unseen = [e for e in candidate.test_events if not seen_by(champion_window, set())(e)]
    assert candidate.test_events and unseen == []
    naive = paired_scores(PEOPLE, task, _serving(candidate, "people"), _serving(champion, "people"),
                          candidate.test_events)
    assert naive.champion > naive.candidate  # what the old gate would have believed
    verdict = decide(paired_scores(PEOPLE, task, _serving(candidate, "people"), _serving(champion, "people"), unseen),
                     force=False, tolerance=0.01, min_rows=30, has_champion=True)
    assert (verdict.decision, verdict.rows) == (UNDECIDED, 0)

    # New events the champion never saw: the candidate, trained on them too,
    # is compared on its held-out share of them, paired on the same events.
    newer = rows + _rows(PEOPLE, 400, seed=4, first_offset=400)
    fresh = _candidate(PEOPLE, "income", newer, "random_forest", {"n_estimators": 30}, seed=2)
    unseen = [e for e in fresh.test_events if not seen_by(champion_window, set())(e)]
    assert unseen and all(e["_offset"] >= 400 for e in unseen)
    evidence = paired_scores(PEOPLE, task, _serving(fresh, "people"), _serving(champion, "people"), unseen)
    assert evidence.rows == len(unseen) and evidence.candidate is not None and evidence.champion is not None


def test_optional_features_get_variants_that_never_needed_them() -> None:
    task = ENERGY.task("carbon")
    assert optional_subsets(task) == [frozenset({"fossil_share_energy"})]
    rows = _rows(ENERGY, 500, seed=5)
    candidate = _candidate(ENERGY, "carbon", rows, "random_forest", {"n_estimators": 20})
    [variant] = candidate.variants
    assert variant.without == ["fossil_share_energy"]
    assert variant.result.feature_names == ["renewables_share_energy"]
    model = _serving(candidate, "energy")
    events = [dict(row, features=dict(row["features"])) for row in rows[:20]]
    for event in events[:10]:
        del event["features"]["fossil_share_energy"]
    answer = model.predict(event_inputs(events, model.meta.inputs), 20, task.optional_features)
    assert answer.rows.tolist() == list(range(20)) and not answer.missing
    alone = model.variants[frozenset({"fossil_share_energy"})]
    direct = alone.score(alone.matrix(event_inputs(events[:10], alone.inputs), 10))
    np.testing.assert_allclose(answer.prediction[:10], direct.prediction)
    full = model.main.score(model.main.matrix(event_inputs(events[10:], model.meta.inputs), 10))
    np.testing.assert_allclose(answer.prediction[10:], full.prediction)
    # A required input missing is not guessed.
    del events[0]["features"]["renewables_share_energy"]
    assert model.predict(event_inputs(events, model.meta.inputs), 20, task.optional_features).missing == {
        0: "renewables_share_energy"}


def test_carbon_from_renewables_alone_falls_as_renewables_rise() -> None:
    # Trained on the generator's own energy data: the variant without the
    # fossil share answers for a country that can exist.
    records = energy(7).next_batch(2000)
    rows = [{"event_id": f"g{i}", "_partition": 0, "_offset": i,
             "features": {k: float(v) for k, v in r.items() if isinstance(v, int | float) and k != "year"},
             "targets": {"carbon_intensity_elec": float(r["carbon_intensity_elec"])}}
            for i, r in enumerate(records)]
    candidate = _candidate(ENERGY, "carbon", rows, "random_forest", {})
    model = _serving(candidate, "energy")
    sweep = np.linspace(0, 100, 41)
    answer = model.predict({"renewables_share_energy": sweep}, len(sweep), ("fossil_share_energy",))
    rho = spearmanr(sweep, answer.prediction).statistic
    assert rho <= -0.8, rho
    original = model.predict({"renewables_share_energy": np.array([0.48])}, 1, ("fossil_share_energy",))
    assert original.prediction[0] > 400, original.prediction  # gCO2/kWh of an almost all-fossil mix


def test_bundle_meta_carries_what_serving_needs() -> None:
    candidate = _candidate(PEOPLE, "income", _rows(PEOPLE, 300, seed=6), "xgboost", {"n_estimators": 20})
    meta = bundle_meta("people", candidate.result, 4, {"topic": "features.people", "partitions": {"0": [0, 9]}})
    assert meta.features == list(PEOPLE.task("income").features)
    assert meta.kind == "regression" and meta.version == 4 and meta.target == "income"
    assert meta.training_window["partitions"] == {"0": [0, 9]}
    assert set(meta.drift) == set(meta.features) and all(len(r.expected) >= 2 for r in meta.drift.values())
    assert np.isfinite(list(meta.metrics.values())).all()
    assert not meta.variants  # income has no optional feature


"""A table no built-in stream knows becomes a live model through the API alone:
infer a declaration from its CSV, register it, upload the file, train an MLP
(chosen layers and epochs) and a tree model on it, predict. Each model's
held-out score matches the same scikit-learn estimator fitted offline on the
same split (the bundle records which rows it held out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shared.ml.bundle import HOLDOUT_FILE
from tests.gateway.conftest import Gateway
from tests.gateway.streams_live import finished_run, started, workers
from tests.helpers import wait_for
from tests.live import read_all

SCHOOL_BONUS = {"riverside": 0.0, "hilltop": 8.0, "lakeside": 16.0}
TOLERANCE = 0.05  # accuracy, between the platform's model and the offline one
MLP = {"hidden_layer_sizes": [32, 16], "epochs": 300, "batch_size": 32, "learning_rate_init": 0.003}
FOREST = {"n_estimators": 80, "max_depth": 8}


def students(n: int = 600, seed: int = 11) -> pd.DataFrame:
    """Grades follow hours studied, attendance and the school; ids and free text carry nothing."""
    rng = np.random.default_rng(seed)
    hours = rng.uniform(0, 30, n).round(1)
    attendance = rng.uniform(40, 100, n).round(1)
    school = rng.choice(list(SCHOOL_BONUS), n)
    score = 2.0 * hours + 0.6 * attendance + np.array([SCHOOL_BONUS[s] for s in school]) + rng.normal(0, 3, n)
    low, high = np.quantile(score, [0.4, 0.75])
    grade = np.where(score > high, "gold", np.where(score > low, "silver", "bronze"))
    notes = [f"student {i} wrote a long and entirely free-form comment about the term, number {i * 7}" for i in range(n)]
    return pd.DataFrame({"student_id": [f"S{i:05d}" for i in range(n)], "hours_studied": hours,
                         "attendance": attendance, "school": school, "notes": notes, "grade": grade})


def offline_accuracy(estimator: Any, table: pd.DataFrame, test_rows: set[int]) -> float:
    """The same estimator, fitted with scikit-learn alone on the same split."""
    X = pd.get_dummies(table[["hours_studied", "attendance", "school"]], columns=["school"]).astype(float).to_numpy()
    test = table.index.isin(sorted(test_rows))
    model = make_pipeline(StandardScaler(), estimator).fit(X[~test], table["grade"][~test])
    return float(accuracy_score(table["grade"][test], model.predict(X[test])))


async def test_a_spreadsheet_becomes_a_live_model_through_the_api(gateway: Gateway, tmp_path: Path) -> None:
    table = students()
    content = table.to_csv(index=False).encode()
    inferred = await gateway.client.post("/v1/streams/infer", data={"target": "grade", "name": "students"},
                                         files={"file": ("students.csv", content, "text/csv")})
    assert inferred.status_code == 200, inferred.text
    proposal = inferred.json()
    declaration = proposal["declaration"]
    types = {f["name"]: f["type"] for f in declaration["fields"]}
    assert (types["hours_studied"], types["attendance"], types["school"]) == ("float", "float", "category")
    assert declaration["key"] == "student_id"
    assert "notes" not in types and any(i["column"] == "notes" for i in proposal["ignored"])
    [task] = declaration["tasks"]
    assert (task["kind"], task["target"]) == ("classification", "grade")
    assert set(task["features"]) == {"hours_studied", "attendance", "school"}

    logs = tmp_path / "logs"
    with workers(gateway, logs, trainer={"TRAIN_INTERVAL": "0"}) as processes:
        await started(logs, processes)
        created = await gateway.client.post("/v1/streams", json=declaration)
        assert created.status_code == 201, created.text
        uploaded = await gateway.client.post("/upload", data={"stream": "students"},
                                             files={"file": ("students.csv", content, "text/csv")})
        assert uploaded.status_code == 200, uploaded.text
        dataset = uploaded.json()
        assert (dataset["rows_accepted"], dataset["rows_rejected"]) == (len(table), 0)

        bootstrap, topics = gateway.settings.kafka_bootstrap_servers, gateway.state.topics

        async def normalized() -> bool:
            return len(await read_all(bootstrap, topics.features("students"))) >= len(table)

        await wait_for(normalized, 120, interval=1.0, message="the upload was not normalized")
        # Which file row each event is (the upload keys events by the stream's key).
        row_of = {orjson.loads(m.value)["event_id"]: int(orjson.loads(m.value)["key"][1:])
                  for m in await read_all(bootstrap, topics.raw("students"))}

        results = {}
        for algorithm, parameters, estimator in (
            ("mlp", MLP, MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=300, batch_size=32,
                                       learning_rate_init=0.003, random_state=42)),
            ("random_forest", FOREST, RandomForestClassifier(n_estimators=80, max_depth=8, random_state=42)),
        ):
            run = await finished_run(gateway, {"stream": "students", "task": task["name"], "algorithm": algorithm,
                                               "hyperparameters": parameters, "dataset_id": dataset["dataset_id"],
                                               "force": True}, logs)
            assert run["status"] == "done", run
            model = (await gateway.client.get(f"/models/{run['model_id']}")).json()
            assert sorted(model["evaluation"]["classes"]) == ["bronze", "gold", "silver"]
            matrix = np.asarray(model["evaluation"]["confusion_matrix"])
            assert matrix.shape == (3, 3) and matrix.trace() / matrix.sum() == pytest.approx(run["metrics"]["accuracy"])
            holdout = orjson.loads((gateway.settings.artifact_dir / _bundle_dir(model) / HOLDOUT_FILE).read_bytes())
            test_rows = {row_of[event_id] for event_id in holdout["event_ids"]}
            assert len(test_rows) == round(0.2 * len(table))
            offline = offline_accuracy(estimator, table, test_rows)
            results[algorithm] = (run["metrics"]["accuracy"], offline)
            assert offline > 0.75, (algorithm, offline)  # the relationship is learnable
            assert abs(run["metrics"]["accuracy"] - offline) <= TOLERANCE, (algorithm, results[algorithm])

        # Predict: the user's labels, and a probability per class.
        best = {"hours_studied": 29.0, "attendance": 99.0, "school": "lakeside"}
        worst = {"hours_studied": 0.5, "attendance": 41.0, "school": "riverside"}
        answer = await gateway.client.post("/v1/streams/students/predict", json={"records": [best, worst]})
        assert answer.status_code == 200, answer.text
        rows = answer.json()["predictions"]
        assert [row["label"] for row in rows] == ["gold", "bronze"]
        for row in rows:
            assert set(row["probabilities"]) == {"bronze", "gold", "silver"}
            assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
            assert row["score"] == max(row["probabilities"].values())
        bad = await gateway.client.post("/v1/streams/students/predict", json={"record": {**best, "hours_studied": "lots"}})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "hours_studied"
        # An inferred category is open: a school the model never saw is scored as "other".
        other = await gateway.client.post("/v1/streams/students/predict", json={"record": {**best, "school": "new"}})
        assert other.status_code == 200, other.text
        download = await gateway.client.get(f"/models/{run['model_id']}/download")
        assert download.status_code == 200 and len(download.content) > 1000


def _bundle_dir(model: dict[str, Any]) -> str:
    return f"{model['stream']}/{model['task']}/v{model['version']}"


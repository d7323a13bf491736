"""The gateway's baseline: the original energy API, rebuilt as it was, a
Flask app with one pandas DataFrame per request and the fitted
estimator's own predict (the energy API this project grew out of).

Serves the same trained model as the gateway, from its joblib file (a
benchmark baseline only: Fluxo's serving path never unpickles). The answer
is named after the task's target, as the original named it.

    MODEL_JOBLIB=... MODEL_FEATURES=a,b MODEL_TASK=stream/task PORT=... python -m bench.apps.flask_pandas
"""

from __future__ import annotations

import os
import warnings

import joblib
import pandas as pd
from flask import Flask, jsonify, request

from shared.streams import builtin_stream

# The model was fitted on arrays; the original passed a DataFrame anyway.
warnings.filterwarnings("ignore", message="X has feature names")

app = Flask(__name__)
model = joblib.load(os.environ["MODEL_JOBLIB"])
features = os.environ["MODEL_FEATURES"].split(",")
_stream, _, _task = os.environ["MODEL_TASK"].partition("/")
target = builtin_stream(_stream).task(_task).target or "prediction"


@app.post("/regress")
def regress():  # noqa: ANN201 - mirrors the original code
    body = request.get_json()
    row = {name: float(body.get(name, 0.0)) for name in features}
    frame = pd.DataFrame([row], columns=features)
    prediction = model.predict(frame)
    return jsonify({target: float(prediction[0])})


if __name__ == "__main__":
    # The original ran Flask's own threaded server.
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)

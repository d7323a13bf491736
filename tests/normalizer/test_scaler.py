"""The online scaler against sklearn's StandardScaler fitted on all the data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from shared.features.scaler import OnlineScaler

FEATURES = ("a", "b", "c")


def test_batches_end_where_a_full_fit_does() -> None:
    rng = np.random.default_rng(0)
    data = np.column_stack([rng.normal(50, 10, 5000), rng.uniform(0, 1e6, 5000), np.full(5000, 3.0)])
    scaler = OnlineScaler(FEATURES)
    for chunk in np.array_split(data, 17):
        scaler.partial_fit_transform(chunk)
    full = StandardScaler().fit(data)
    state = scaler.state()
    assert state.n_samples == 5000 and state.version == 17
    assert state.mean == pytest.approx(full.mean_.tolist(), rel=1e-10)
    assert state.var == pytest.approx(full.var_.tolist(), rel=1e-10, abs=1e-12)
    # The last batch is scaled with the state that includes it, as sklearn would.
    last = data[-10:]
    online = scaler.partial_fit_transform(np.empty((0, 3)))  # an empty batch changes nothing
    assert online.shape == (0, 3) and scaler.version == 17
    np.testing.assert_allclose((last - np.asarray(state.mean)) / full.scale_, full.transform(last), rtol=1e-9)
    # A constant feature is left unscaled (scale 1), never divided by zero.
    assert np.isfinite(full.transform(last)).all()


def test_transform_uses_the_updated_state() -> None:
    scaler = OnlineScaler(FEATURES)
    first = np.array([[1.0, 2.0, 3.0], [3.0, 6.0, 3.0]])
    scaled = scaler.partial_fit_transform(first)
    np.testing.assert_allclose(scaled, StandardScaler().fit_transform(first))


def test_restore_resumes_statistics_and_version() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(0, 1, (300, 3))
    original = OnlineScaler(FEATURES)
    original.partial_fit_transform(data[:200])
    resumed = OnlineScaler(FEATURES)
    resumed.restore(original.state())
    assert resumed.version == 1 and resumed.n_samples == 200
    out_a = original.partial_fit_transform(data[200:])
    out_b = resumed.partial_fit_transform(data[200:])
    np.testing.assert_allclose(out_b, out_a, rtol=1e-12)
    assert resumed.state().var == pytest.approx(original.state().var, rel=1e-12)
    assert resumed.version == 2


def test_restore_refuses_other_features() -> None:
    other = OnlineScaler(("x", "y", "z"))
    other.partial_fit_transform(np.ones((2, 3)))
    with pytest.raises(ValueError, match="differ"):
        OnlineScaler(FEATURES).restore(other.state())


def test_wrong_shape_is_an_error() -> None:
    with pytest.raises(ValueError, match="3 columns"):
        OnlineScaler(FEATURES).partial_fit_transform(np.ones((2, 2)))

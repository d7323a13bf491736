"""An online StandardScaler per stream: sklearn's partial_fit, batch by batch.

``version`` counts updates: it grows by one for every batch that changes the
statistics, so a features event's ``scaler_version`` names exactly the state
that scaled it. A restored snapshot resumes its version, which keeps versions
rising across a clean restart of the normalizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class ScalerState:
    version: int
    n_samples: int
    features: tuple[str, ...]
    mean: tuple[float, ...]
    var: tuple[float, ...]


class OnlineScaler:
    def __init__(self, features: Sequence[str]) -> None:
        self.features = tuple(features)
        self.version = 0
        self._scaler = StandardScaler()

    @property
    def n_samples(self) -> int:
        return int(getattr(self._scaler, "n_samples_seen_", 0))

    def partial_fit_transform(self, matrix: np.ndarray) -> np.ndarray:
        """Update with ``matrix`` (rows x features), then scale it with the updated state."""
        if matrix.ndim != 2 or matrix.shape[1] != len(self.features):
            raise ValueError(f"expected a matrix with {len(self.features)} columns, got shape {matrix.shape}")
        if matrix.shape[0] == 0:
            return matrix.copy()
        self._scaler.partial_fit(matrix)
        self.version += 1
        # The same arithmetic as StandardScaler.transform without its
        # per-call input checks, which cost more than the maths on a batch.
        return (matrix - self._scaler.mean_) / self._scaler.scale_

    def state(self) -> ScalerState:
        if self.n_samples == 0:
            zeros = (0.0,) * len(self.features)
            return ScalerState(self.version, 0, self.features, zeros, zeros)
        return ScalerState(
            version=self.version,
            n_samples=self.n_samples,
            features=self.features,
            mean=tuple(float(x) for x in self._scaler.mean_),
            var=tuple(float(x) for x in self._scaler.var_),
        )

    def restore(self, state: ScalerState) -> None:
        """Resume from a snapshot of the same features (e.g. after a restart)."""
        if tuple(state.features) != self.features:
            raise ValueError(f"snapshot features {list(state.features)} differ from {list(self.features)}")
        if len(state.mean) != len(self.features) or len(state.var) != len(self.features):
            raise ValueError("snapshot mean/var length differs from its feature list")
        scaler = StandardScaler()
        if state.n_samples > 0:
            var = np.asarray(state.var, dtype=np.float64)
            scaler.mean_ = np.asarray(state.mean, dtype=np.float64)
            scaler.var_ = var
            scaler.scale_ = _scale_from_var(var)
            scaler.n_samples_seen_ = np.int64(state.n_samples)  # as sklearn keeps it
            scaler.n_features_in_ = len(self.features)
        self._scaler = scaler
        self.version = int(state.version)


def _scale_from_var(var: np.ndarray) -> np.ndarray:
    # StandardScaler leaves constant features unscaled (scale 1), not divided by ~0.
    scale = np.sqrt(var)
    scale[scale < 10 * np.finfo(np.float64).eps] = 1.0
    return scale

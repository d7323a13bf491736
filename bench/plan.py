"""How big each benchmark is: the full run and the --quick smoke run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    quick: bool
    # Pipeline throughput (and the scaling and pass-through runs): raw events
    # per stream, pre-produced before the services start.
    pipeline_events: int
    # Most seconds a throughput run may take once its services are up.
    pipeline_timeout_s: float
    # Models the pipeline scores with are trained on this many rows per task.
    model_rows: int
    http_chain_events: int
    http_chain_seconds: float
    http_chain_clients: tuple[int, ...]
    latency_rate: float  # events per second, all streams together
    latency_seconds: float
    wrk_seconds: int
    wrk_connections: int
    batch_rows: int  # records per batch-endpoint request
    training_sizes: tuple[int, ...]
    # Per fit: a fit projected (from the next smaller size) to take longer
    # is not run, and recorded with the projection as the reason.
    training_fit_cap_s: float
    training_budget_s: float
    # MLP epochs at the largest size (the default of 200 elsewhere).
    mlp_epochs_cap: int
    trainer_window: int


FULL = Plan(
    quick=False,
    # 450,000 events in all: at 10,000 events/s the run lasts 45 s.
    pipeline_events=150_000,
    pipeline_timeout_s=240,
    model_rows=20_000,
    http_chain_events=2_000,
    http_chain_seconds=30,
    http_chain_clients=(1, 4),
    latency_rate=1_000,
    latency_seconds=20,
    wrk_seconds=10,
    wrk_connections=8,
    batch_rows=1_000,
    training_sizes=(10_000, 100_000, 1_000_000),
    training_fit_cap_s=90,
    training_budget_s=360,
    mlp_epochs_cap=10,
    trainer_window=20_000,
)

QUICK = Plan(
    quick=True,
    pipeline_events=1_500,
    pipeline_timeout_s=90,
    model_rows=2_000,
    http_chain_events=60,
    http_chain_seconds=5,
    http_chain_clients=(1, 2),
    latency_rate=150,
    latency_seconds=3,
    wrk_seconds=2,
    wrk_connections=4,
    batch_rows=100,
    training_sizes=(1_000, 3_000),
    training_fit_cap_s=20,
    training_budget_s=60,
    mlp_epochs_cap=10,
    trainer_window=2_000,
)

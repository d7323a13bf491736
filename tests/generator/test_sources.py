"""Generated records: within their stream's bounds, reproducible from the
seed, labelled anomalies at the configured rate, and learnable relations."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import adjusted_rand_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from services.generator.people import expected_earnings
from shared.validation import validate_batch
from tests.generator.streams import SIMULATED, START, energy, people, pressure, source


@pytest.mark.parametrize("stream", SIMULATED)
def test_every_record_is_valid_for_its_stream(stream: str) -> None:
    generator = source(stream, 5)
    records = generator.next_batch(3000)
    result = validate_batch(generator.spec, records)
    assert result.reasons == {}
    assert all(set(record) <= set(generator.spec.field_names) for record in records)
    assert all(record[generator.spec.key] for record in records)


@pytest.mark.parametrize("stream", SIMULATED)
def test_every_bound_field_is_generated(stream: str) -> None:
    generator = source(stream, 5)
    assert generator.spec.simulation is not None
    bound = set(generator.spec.simulation.bind.values())
    assert all(set(record) == bound for record in generator.next_batch(500))


@pytest.mark.parametrize("stream", SIMULATED)
def test_same_seed_same_records_other_seed_others(stream: str) -> None:
    first, again, other = source(stream, 11), source(stream, 11), source(stream, 12)
    assert first.next_batch(50) + first.next_batch(50) == again.next_batch(100)
    assert first.next_batch(100) != other.next_batch(200)[100:]


def test_energy_has_three_groups_and_carbon_follows_the_shares() -> None:
    source = energy(3, countries=45)
    records = source.next_batch(4000)
    shares = np.array([[r["renewables_share_energy"], r["fossil_share_energy"]] for r in records])
    carbon = np.array([r["carbon_intensity_elec"] for r in records])
    assert np.all(shares.sum(axis=1) <= 100.0 + 1e-9)
    nuclear = np.array([r["nuclear_share_energy"] for r in records])
    assert np.all(shares.sum(axis=1) + nuclear >= 95.0)  # the rest is a few percent "other"
    train_x, test_x, train_y, test_y = train_test_split(shares, carbon, test_size=0.25, random_state=0)
    model = RandomForestRegressor(n_estimators=40, max_depth=8, random_state=0).fit(train_x, train_y)
    assert r2_score(test_y, model.predict(test_x)) > 0.8
    features = StandardScaler().fit_transform(np.column_stack([shares, carbon]))
    labels = KMeans(n_clusters=3, n_init=5, random_state=0).fit_predict(features)
    profile = source.profile[[source.countries.index(r["country"]) for r in records]]
    assert adjusted_rand_score(profile, labels) > 0.9


def test_people_income_is_learnable_and_sensible() -> None:
    records = people(4).next_batch(4000)
    x = np.array([[r["age"], r["years_education"], r["hours_per_week"], r["experience_years"]] for r in records])
    y = np.array([r["income"] for r in records])
    assert np.all(x[:, 3] <= x[:, 0] - x[:, 1] - 6 + 1e-9)  # experience fits in a life
    assert len({r["person_id"] for r in records}) == len(records)
    train_x, test_x, train_y, test_y = train_test_split(x, y, test_size=0.25, random_state=0)
    model = RandomForestRegressor(n_estimators=40, max_depth=10, random_state=0).fit(train_x, train_y)
    assert r2_score(test_y, model.predict(test_x)) > 0.8
    noiseless = expected_earnings(x[:, 1], x[:, 3], x[:, 2])
    assert np.median(np.abs(y / noiseless - 1)) < 0.1


def test_pressure_sensors_timestamps_and_daily_cycle() -> None:
    source = pressure(6, sensors=10, anomaly_rate=0.0, sim_step=600)
    records = source.next_batch(10 * 6 * 48)  # two simulated days
    by_sensor: dict[str, list[dict]] = {}
    for r in records:
        by_sensor.setdefault(r["sensor_id"], []).append(r)
    assert len(by_sensor) == 10
    for readings in by_sensor.values():
        # Fixed place and kind, one reading every sim_step.
        assert len({(r["latitude"], r["longitude"], r["neighbourhood"], r["sensor_type"]) for r in readings}) == 1
        stamps = [datetime.fromisoformat(r["timestamp"]) for r in readings]
        assert stamps[0] == START and all(b - a == timedelta(minutes=10) for a, b in zip(stamps, stamps[1:]))
    assert not any(r["anomaly"] for r in records)
    # Night readings sit above mid-afternoon ones (demand peaks in the day).
    hour = np.array([datetime.fromisoformat(r["timestamp"]).hour for r in records])
    value = np.array([r["pressure_mca"] for r in records])
    assert value[(hour >= 1) & (hour <= 5)].mean() > value[(hour >= 13) & (hour <= 17)].mean() + 5


@pytest.mark.parametrize("rate", [0.02, 0.1])
def test_pressure_anomalies_are_labelled_at_the_configured_rate(rate: float) -> None:
    source = pressure(8, sensors=20, anomaly_rate=rate)
    records = source.next_batch(60_000)
    labels = np.array([r["anomaly"] for r in records])
    assert labels.mean() == pytest.approx(rate, rel=0.2)
    # Anomalous readings stand out from the sensor's normal range (drops,
    # bursts, flat lines below it); normal ones mostly do not.
    values = np.array([r["pressure_mca"] for r in records])
    ids = np.array([r["sensor_id"] for r in records])
    far = np.zeros(len(records), dtype=bool)
    for sensor in np.unique(ids):
        mine = ids == sensor
        normal = values[mine & ~labels]
        low, high = np.percentile(normal, [0.5, 99.5])
        far[mine] = (values[mine] < low) | (values[mine] > high)
    assert far[labels].mean() > 0.9
    assert far[~labels].mean() < 0.02


def test_pressure_flat_lines_hold_one_value() -> None:
    source = pressure(9, sensors=1, anomaly_rate=0.2)
    records = source.next_batch(5000)
    runs, current = [], []
    for r in records:
        if r["anomaly"]:
            current.append(r["pressure_mca"])
        elif current:
            runs.append(current)
            current = []
    flat = [run for run in runs if len(run) >= 4 and len(set(run)) == 1]
    assert flat, "expected some flat-line episodes"

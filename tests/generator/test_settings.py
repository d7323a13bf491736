"""The generator's and normalizer's settings come from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.generator.settings import GeneratorSettings
from services.normalizer.settings import NormalizerSettings
from shared.settings import SettingsError, load_settings


def test_generator_reads_lists_and_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENERATOR_STREAMS", "people, energy")
    monkeypatch.setenv("GENERATOR_RATE", "250")
    monkeypatch.setenv("GENERATOR_COUNT", "1000")
    monkeypatch.setenv("GENERATOR_SIM_START", "2026-01-01T00:00:00Z")
    settings = load_settings(GeneratorSettings)
    assert settings.generator_streams == ("people", "energy")
    assert settings.drifting_streams == ("people", "energy")
    assert settings.drifts("people") and not settings.drifts("consumption")
    assert (settings.generator_rate, settings.generator_count) == (250.0, 1000)
    assert settings.generator_sim_start is not None and settings.generator_sim_start.year == 2026
    assert settings.service_name == "generator"


def test_generator_defaults_to_every_simulated_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENERATOR_STREAMS", raising=False)
    monkeypatch.setenv("GENERATOR_DRIFT_STREAMS", "")
    settings = load_settings(GeneratorSettings)
    assert settings.generator_streams == () and settings.drifts("consumption")
    monkeypatch.setenv("GENERATOR_DRIFT_STREAMS", "pressure")
    settings = load_settings(GeneratorSettings)
    assert settings.drifts("pressure") and not settings.drifts("consumption")


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        # Streams are declared while Fluxo runs, so only the form of a name is
        # checked here (test_build.py: a name with no simulation stops the generator).
        ("GENERATOR_STREAMS", "energy,Weather!", "GENERATOR_STREAMS"),
        ("GENERATOR_HOUSEHOLDS", "0", "GENERATOR_HOUSEHOLDS"),
        ("GENERATOR_RATE", "-1", "GENERATOR_RATE"),
        ("GENERATOR_ANOMALY_RATE", "1.5", "GENERATOR_ANOMALY_RATE"),
        ("GENERATOR_REPLAY_STREAM", "energy", "GENERATOR_REPLAY_FILE"),
    ],
)
def test_generator_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=fragment):
        load_settings(GeneratorSettings)


def test_replay_file_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GENERATOR_REPLAY_FILE", str(tmp_path / "nope.csv"))
    monkeypatch.setenv("GENERATOR_REPLAY_STREAM", "energy")
    with pytest.raises(SettingsError, match="not a file"):
        load_settings(GeneratorSettings)


def test_normalizer_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORMALIZER_STREAMS", "pressure")
    monkeypatch.setenv("SCALER_PUBLISH_INTERVAL", "0.5")
    settings = load_settings(NormalizerSettings)
    assert settings.normalizer_streams == ("pressure",)
    assert settings.scaler_publish_interval == 0.5
    assert settings.group == "normalizer"
    monkeypatch.setenv("NORMALIZER_STREAMS", "pressure,No pe")  # streams are declared later: only the form is checked
    with pytest.raises(SettingsError, match="NORMALIZER_STREAMS"):
        load_settings(NormalizerSettings)

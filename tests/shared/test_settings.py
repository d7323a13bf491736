from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.settings import ServiceSettings, SettingsError, load_settings


def test_defaults_load_and_are_frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092,127.0.0.1:19093")
    settings = load_settings(ServiceSettings)
    assert settings.kafka_bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19093"
    with pytest.raises(ValidationError, match="frozen"):
        settings.service_name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("METRICS_PORT", "seventy"),
        ("METRICS_PORT", "70000"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost"),
        ("DATABASE_URL", "mysql://x@y/z"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_values_fail_naming_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as failure:
        load_settings(ServiceSettings)
    message = str(failure.value.code)
    assert variable in message
    assert repr(value) in message


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert load_settings(ServiceSettings).log_level == "DEBUG"


def test_topic_replication_defaults_to_one_broker_and_checks_min_insync(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(ServiceSettings).topic_replication == {"replication_factor": 1, "min_insync_replicas": 1}
    monkeypatch.setenv("TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("TOPIC_MIN_INSYNC_REPLICAS", "2")
    assert load_settings(ServiceSettings).topic_replication == {"replication_factor": 3, "min_insync_replicas": 2}
    monkeypatch.setenv("TOPIC_MIN_INSYNC_REPLICAS", "4")
    with pytest.raises(SettingsError) as failure:
        load_settings(ServiceSettings)
    assert "TOPIC_MIN_INSYNC_REPLICAS='4'" in str(failure.value.code)


def test_each_group_member_has_its_own_session_timeout_setting(monkeypatch) -> None:
    """A restarted normalizer or trainer waited out a fixed 30 s session of its dead predecessor."""
    from services.normalizer.settings import NormalizerSettings
    from services.trainer.settings import TrainerSettings
    from shared.settings import load_settings

    monkeypatch.setenv("NORMALIZER_SESSION_TIMEOUT_MS", "7000")
    monkeypatch.setenv("TRAINER_SESSION_TIMEOUT_MS", "8000")
    assert load_settings(NormalizerSettings).normalizer_session_timeout_ms == 7000
    assert load_settings(TrainerSettings).trainer_session_timeout_ms == 8000
    monkeypatch.delenv("NORMALIZER_SESSION_TIMEOUT_MS")
    assert load_settings(NormalizerSettings).normalizer_session_timeout_ms == 10_000

"""``python -m services.generator``: configured by environment variables only.

With GENERATOR_COUNT (or a replay file) it exits 0 once every event is
acknowledged; otherwise it runs until SIGTERM/SIGINT. SIGUSR1 toggles drift.
Variables (services/generator/settings.py): GENERATOR_STREAMS, _RATE, _COUNT,
_BATCH_SIZE, _SEED, _SENSORS, _COUNTRIES, _HOUSEHOLDS, _ANOMALY_RATE, _INVALID_RATE,
_SIM_START, _SIM_STEP, _DRIFT_AT, _DRIFT_STREAMS, _DRIFT_MAGNITUDE,
_REPLAY_FILE, _REPLAY_STREAM.
"""

from __future__ import annotations

from services.generator.service import run
from services.generator.settings import GeneratorSettings
from shared.service import run_service
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(GeneratorSettings)
    run_service(settings, lambda stop: run(settings, stop))


if __name__ == "__main__":
    main()

"""``python -m services.normalizer``: configured by environment variables only.

Besides the common ones (shared.settings): NORMALIZER_STREAMS (default all),
NORMALIZER_GROUP, NORMALIZER_MAX_SENSORS, NORMALIZER_MAX_RECORDS,
SCALER_PUBLISH_INTERVAL; see services/normalizer/settings.py. Stops on
SIGTERM/SIGINT after finishing its batch and publishing its scalers.
"""

from __future__ import annotations

from services.normalizer.service import run, tune_gc
from services.normalizer.settings import NormalizerSettings
from shared.service import run_service
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(NormalizerSettings)
    tune_gc()
    run_service(settings, lambda stop: run(settings, stop))


if __name__ == "__main__":
    main()

"""``python -m services.normalizer``: configured by environment variables only."""

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

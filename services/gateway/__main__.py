"""``python -m services.gateway``: the REST gateway under uvicorn.

Configured only by environment variables (see services/gateway/settings.py);
uvicorn turns SIGTERM and SIGINT into a graceful shutdown, which runs the
lifespan's cleanup (producer, consumer, pool).
"""

from __future__ import annotations

import uvicorn

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.logs import configure_logging
from shared.settings import load_settings


def main() -> None:
    settings = load_settings(GatewaySettings)
    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    # /metrics is served by the app itself, so METRICS_PORT is not used here.
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=None,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()

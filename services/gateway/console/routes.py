"""The console's pages and its static files, added to the gateway by install_console."""

from __future__ import annotations

import mimetypes

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from services.gateway.console.pages import data, overview, predict, registry, sensors, streams
from services.gateway.console.templating import PACKAGE, STATIC_ROUTE

STATIC_TYPES = (("text/javascript", ".js"), ("text/css", ".css"), ("image/svg+xml", ".svg"))

# Pages are for people, not API clients: their routers are kept out of the
# OpenAPI schema (and so out of the schema fuzz).
PAGES = (overview, streams, sensors, predict, data, registry)


def install_console(app: FastAPI) -> None:
    """Serve the console's pages at / and its scripts and stylesheets at /static.

    The files are found through the package, so an installed wheel serves
    the copies inside it.
    """
    # StaticFiles takes the type from the mimetypes table, which the host's
    # /etc/mime.types or registry can change (Windows has served .js as
    # text/plain, which browsers refuse under nosniff): pin what we ship.
    for media_type, suffix in STATIC_TYPES:
        mimetypes.add_type(media_type, suffix)
    for module in PAGES:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(packages=[(PACKAGE, "static")]), name=STATIC_ROUTE)

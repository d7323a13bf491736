"""The console's pages and its static files, added to the gateway by install_console."""

from __future__ import annotations

import mimetypes

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from services.gateway.console.charts import sample_chart
from services.gateway.console.templating import PACKAGE, STATIC_ROUTE, page

# Pages are for people, not API clients: keep them out of the OpenAPI schema
# (and so out of the schema fuzz).
router = APIRouter(include_in_schema=False)

STATIC_TYPES = (("text/javascript", ".js"), ("text/css", ".css"), ("image/svg+xml", ".svg"))


@router.get("/", response_class=HTMLResponse, name="console-overview")
async def overview(request: Request) -> HTMLResponse:
    return page(request, "overview.html", active="overview", title="Overview", chart=sample_chart())


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
    app.include_router(router)
    app.mount("/static", StaticFiles(packages=[(PACKAGE, "static")]), name=STATIC_ROUTE)

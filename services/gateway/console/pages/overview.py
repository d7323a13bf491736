"""The overview at /: every stream's rates, lag and models, and the services' health."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.gateway.console.live.runtime import console_runtime
from services.gateway.console.pages.common import gateway
from services.gateway.console.templating import page, partial
from services.gateway.console.views.overview import overview

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse, name="console-overview")
async def overview_page(request: Request) -> HTMLResponse:
    view = await overview(gateway(request), console_runtime(request))
    return page(request, "overview.html", active="overview", title="Overview", view=view)


@router.get("/overview/live", response_class=HTMLResponse, name="console-overview-live")
async def overview_live(request: Request) -> HTMLResponse:
    view = await overview(gateway(request), console_runtime(request))
    return partial(request, "partials/overview_live.html", view=view)

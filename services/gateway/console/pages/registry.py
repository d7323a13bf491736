"""The model registry (/registry): every model with its metrics and aliases, every
training run with its champion decision and reason, download links.

Not at /models: GET /models is the JSON API's list of the same models."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.gateway.console.pages.common import gateway
from services.gateway.console.templating import page, partial
from services.gateway.console.views.registry import registry_view

router = APIRouter(include_in_schema=False)


@router.get("/registry", response_class=HTMLResponse, name="console-registry")
async def registry_page(request: Request) -> HTMLResponse:
    view = await registry_view(gateway(request))
    return page(request, "registry.html", active="registry", title="Models", view=view)


@router.get("/registry/live", response_class=HTMLResponse, name="console-registry-live")
async def registry_live(request: Request) -> HTMLResponse:
    return partial(request, "partials/registry_tables.html", view=await registry_view(gateway(request)))

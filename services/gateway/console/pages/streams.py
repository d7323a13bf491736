"""The stream pages: /streams lists them, /streams/{name} shows one, built from its declaration."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.gateway.console.live.runtime import console_runtime
from services.gateway.console.pages.common import gateway, not_found, stream_or_none
from services.gateway.console.templating import page, partial
from services.gateway.console.views.overview import overview
from services.gateway.console.views.stream import live_table, summary, task_charts

router = APIRouter(include_in_schema=False)


@router.get("/streams", response_class=HTMLResponse, name="console-streams")
async def streams_page(request: Request) -> HTMLResponse:
    view = await overview(gateway(request), console_runtime(request))
    return page(request, "streams.html", active="streams", title="Streams", view=view)


@router.get("/streams/{name}", response_class=HTMLResponse, name="console-stream")
async def stream_page(request: Request, name: str) -> HTMLResponse:
    state, runtime = gateway(request), console_runtime(request)
    declared = stream_or_none(state, name)
    if declared is None:
        return not_found(request, f"stream {name!r}")
    return page(
        request, "stream.html", active="streams", title=f"Stream {name}",
        summary=summary(state, runtime, declared),
        table=await live_table(state, runtime, declared),
        charts=await task_charts(state, declared.spec),
    )


@router.get("/streams/{name}/live", response_class=HTMLResponse, name="console-stream-live")
async def stream_live(request: Request, name: str) -> HTMLResponse:
    """The newest events with their predictions, and the stream's figures (polled by the page)."""
    state, runtime = gateway(request), console_runtime(request)
    declared = stream_or_none(state, name)
    if declared is None:
        return not_found(request, f"stream {name!r}")
    return partial(request, "partials/stream_live.html", summary=summary(state, runtime, declared),
                   table=await live_table(state, runtime, declared))


@router.get("/streams/{name}/charts", response_class=HTMLResponse, name="console-stream-charts")
async def stream_charts(request: Request, name: str) -> HTMLResponse:
    state = gateway(request)
    declared = stream_or_none(state, name)
    if declared is None:
        return not_found(request, f"stream {name!r}")
    return partial(request, "partials/stream_charts.html", stream=declared.spec.name,
                   charts=await task_charts(state, declared.spec))

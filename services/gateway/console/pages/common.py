"""What every console page handler needs: the gateway's state, the runtime,
the API key check of the forms that change things, and refusals as HTML."""

from __future__ import annotations

from fastapi import Request
from starlette.responses import HTMLResponse

from services.gateway.auth import API_KEY_HEADER, key_matches
from services.gateway.console.templating import page, partial
from services.gateway.errors import ApiError
from services.gateway.state import GatewayState
from shared.streams.catalog import Declared


def gateway(request: Request) -> GatewayState:
    return request.app.state.gateway


def key_refusal(request: Request) -> HTMLResponse | None:
    """A 401 fragment when the gateway has an API key and the request does not carry it.

    The same check as the API's routes that change things: the console's
    forms do nothing the API would not let the same caller do.
    """
    secret = gateway(request).settings.fluxo_api_key
    if secret is None or key_matches(secret.get_secret_value(), request.headers.get(API_KEY_HEADER)):
        return None
    return partial(request, "partials/refused.html", status=401, title="The API key is needed",
                   detail="This gateway has an API key: enter it at the top of the page, then try again.",
                   errors=[])


def refused(request: Request, error: ApiError) -> HTMLResponse:
    """An API refusal (422, 409, 413, 503...) as a fragment, with its status."""
    return partial(request, "partials/refused.html", status=error.status, title="Refused",
                   detail=error.detail, errors=error.errors)


def stream_or_none(state: GatewayState, name: str) -> Declared | None:
    return state.catalog.entry(name)


def not_found(request: Request, what: str) -> HTMLResponse:
    return page(request, "not_found.html", active="", title="Not found", status=404, what=what)

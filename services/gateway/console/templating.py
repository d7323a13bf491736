"""The console's Jinja2 environment and the one way its pages are answered.

Autoescaping is on for every template, whatever its file name, so a value
from a record or a model name is always text, never markup. Every page is
sent with a Content-Security-Policy that allows only this origin's scripts
and styles: an injected script would neither run nor reach the API key kept
in sessionStorage, and a stray CDN reference shows up as an error in the
browser tests instead of quietly working online.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from services.gateway.console.formatting import FILTERS
from services.gateway.console.nav import SECTIONS
from services.gateway.console.views.guard import Outage
from services.gateway.console.views.models import decision_reason

PACKAGE = "services.gateway.console"
STATIC_ROUTE = "static"  # the name of the /static mount, for url_path_for



def content_security_policy(image_origin: str | None = None) -> str:
    """Only this origin's scripts, styles and connections; images also from the
    map tile server's origin when one is configured."""
    images = "img-src 'self' data:" + (f" {image_origin}" if image_origin else "")
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            images,
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        )
    )


CONTENT_SECURITY_POLICY = content_security_policy()
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _gateway_settings(request: Request) -> Any:
    gateway = getattr(request.app.state, "gateway", None)
    return None if gateway is None else gateway.settings


def headers_for(request: Request) -> dict[str, str]:
    settings = _gateway_settings(request)
    tiles = getattr(settings, "console_map_tiles_url", None)
    if not tiles:
        return PAGE_HEADERS
    parts = urlsplit(tiles)
    return {**PAGE_HEADERS, "Content-Security-Policy": content_security_policy(f"{parts.scheme}://{parts.netloc}")}


def api_key_required(request: Request) -> bool:
    settings = _gateway_settings(request)
    return settings is not None and settings.fluxo_api_key is not None


@cache
def _fingerprint(path: str) -> str:
    """First hex digits of a static file's sha256, so a new release's file is a new URL."""
    return hashlib.sha256(files(PACKAGE).joinpath("static", path).read_bytes()).hexdigest()[:12]


@jinja2.pass_context
def static_url(context: jinja2.runtime.Context, path: str) -> str:
    """/static/<path>?v=<content hash>, under the app's root_path when it has one."""
    request: Request = context["request"]
    mounted = request.app.url_path_for(STATIC_ROUTE, path=path)
    return f"{request.scope.get('root_path', '')}{mounted}?v={_fingerprint(path)}"


def make_environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(PACKAGE, "templates"),
        autoescape=True,  # every template, not only *.html (select_autoescape's default)
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails the page, not renders ""
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals["sections"] = SECTIONS
    environment.globals["static_url"] = static_url
    environment.filters.update(FILTERS)
    environment.tests["outage"] = lambda value: isinstance(value, Outage)
    environment.globals["decision_reason"] = decision_reason
    return environment


templates = Jinja2Templates(env=make_environment())


def page(
    request: Request, template: str, *, active: str, title: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """A console page: the template rendered in the layout, with the security headers.

    `active` is the key of the section tab to mark (see nav.SECTIONS).
    """
    context = {"active": active, "title": title, "api_key_required": api_key_required(request), **context}
    return templates.TemplateResponse(request, template, context, status_code=status, headers=headers_for(request))


def partial(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A fragment that htmx swaps into a page (no layout), with the page's headers."""
    context = {"api_key_required": api_key_required(request), **context}
    return templates.TemplateResponse(request, template, context, status_code=status, headers=headers_for(request))

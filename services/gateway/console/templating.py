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

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from services.gateway.console.nav import SECTIONS

PACKAGE = "services.gateway.console"
STATIC_ROUTE = "static"  # the name of the /static mount, for url_path_for

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


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
    return environment


templates = Jinja2Templates(env=make_environment())


def page(request: Request, template: str, *, active: str, title: str, **context: Any) -> HTMLResponse:
    """A console page: the template rendered in the layout, with the security headers.

    `active` is the key of the section tab to mark (see nav.SECTIONS).
    """
    return templates.TemplateResponse(
        request, template, {"active": active, "title": title, **context}, headers=PAGE_HEADERS
    )

"""The console's skeleton: layout, static files, escaping, charts, the API key
and a live part, in a real browser.

The app here is a bare FastAPI with install_console and a test page built on
the layout: the skeleton needs no Kafka or PostgreSQL, so neither is started
(the pages themselves are tested against a running stack in test_pages.py
and test_browser.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import tomllib
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.testclient import TestClient

from services.gateway.console import install_console
from services.gateway.console.charts import line_chart
from services.gateway.console.nav import SECTIONS
from services.gateway.console.templating import (
    CONTENT_SECURITY_POLICY,
    PAGE_HEADERS,
    make_environment,
    templates,
)
from tests.console.browser import BrowserPage, Screenshot
from tests.console.server import serving
from tests.processes import REPO

CONSOLE_DIR = REPO / "services" / "gateway" / "console"
STATIC_DIR = CONSOLE_DIR / "static"
VENDOR_DIR = STATIC_DIR / "vendor"
EVIL = "<script>alert(1)</script>"
TICKS = 3
# A live part as console pages will write one: htmx's SSE extension swaps each
# `tick` event into the element.
LIVE_PAGE = """{% extends "base.html" %}{% block content %}
<div id="live" hx-ext="sse" sse-connect="/test/ticks" sse-swap="tick">waiting</div>
{% endblock %}"""
# A page on the layout with a chart, as the console's pages draw them.
CHART_PAGE = """{% extends "base.html" %}{% from "macros.html" import line_chart %}{% block content %}
<h1>Layout check</h1>
{{ line_chart("sample-chart", chart, caption="Sample data drawn by the console's own copy of uPlot.") }}
{% endblock %}"""
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# What the base layout must load, all from this origin.
LAYOUT_ASSETS = {
    "/static/vendor/htmx/htmx.min.js",
    "/static/vendor/htmx-ext-sse/sse.min.js",
    "/static/vendor/uplot/uPlot.iife.min.js",
    "/static/vendor/uplot/uPlot.min.css",
    "/static/console.js",
    "/static/console.css",
    "/static/favicon.svg",
}


def sample_chart(points: int = 48, start: float = 1_767_225_600.0) -> dict[str, object]:
    """A fixed day-shaped curve and a flat baseline, half-hourly, with one marker."""
    x = [start + i * 1800.0 for i in range(points)]
    load = [round(50 + 30 * math.sin(i / points * 2 * math.pi - math.pi / 2) + 4 * math.sin(i), 2) for i in range(points)]
    return line_chart(x, {"sample load": load, "baseline": [50.0] * points}, markers=[(x[points // 2], "v2")])


def chart_page(request: Request, title: str, chart: dict[str, object]) -> HTMLResponse:
    html = templates.env.from_string(CHART_PAGE).render(
        request=request, active="overview", title=title, chart=chart, api_key_required=False
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


def console_app() -> FastAPI:
    """install_console on a bare app, plus routes that only the tests need."""
    app = FastAPI()
    install_console(app)

    @app.get("/test/page", response_class=HTMLResponse)
    async def layout_page(request: Request) -> HTMLResponse:
        return chart_page(request, "Layout check", sample_chart())

    @app.get("/test/escaping", response_class=HTMLResponse)
    async def escaping(request: Request) -> HTMLResponse:
        return chart_page(request, EVIL, line_chart([0, 1, 2], {EVIL: [1.0, 3.0, 2.0]}, time_axis=False))

    @app.get("/test/live", response_class=HTMLResponse)
    async def live(request: Request) -> HTMLResponse:
        html = templates.env.from_string(LIVE_PAGE).render(
            request=request, active="overview", title="Live", api_key_required=False
        )
        return HTMLResponse(html, headers=PAGE_HEADERS)

    @app.get("/test/ticks")
    async def ticks(request: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[str]:
            for n in range(1, TICKS + 1):
                yield f"event: tick\ndata: <b>tick {n}</b>\n\n"
                await asyncio.sleep(0.05)
            # Then stay open, as a live stream does: a closed stream makes the
            # browser reconnect and htmx log an error. Starlette ends this
            # generator when the page goes away; the bound covers the rest.
            for _ in range(600):
                await asyncio.sleep(0.05)

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/test/echo-key")
    async def echo_key(request: Request) -> Response:
        given = request.headers.get("x-api-key")
        if given is None:
            return PlainTextResponse("no key", status_code=401)
        return PlainTextResponse(f"key={given}")

    return app


class AssetLinks(HTMLParser):
    """The src of every script and href of every stylesheet or icon link."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and attributes.get("src"):
            self.urls.append(attributes["src"] or "")
        if tag == "link" and attributes.get("rel") in ("stylesheet", "icon"):
            self.urls.append(attributes.get("href") or "")


def asset_links(html: str) -> list[str]:
    parser = AssetLinks()
    parser.feed(html)
    return parser.urls


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(console_app()) as test_client:
        yield test_client


# --- Rendering and static files (no browser) ---------------------------------


def test_layout_renders_every_section(client: TestClient) -> None:
    response = client.get("/test/page")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    html = response.text
    assert "<title>Layout check · Fluxo</title>" in html
    for section in SECTIONS:
        label = section.label.replace("&", "&amp;")
        assert f'<a href="{section.path}"' in html and f">{label}</a>" in html, section
    assert re.findall(r'aria-current="page">([^<]*)<', html) == ["Overview"]
    assert 'data-api-key-form' in html and 'id="api-key-input"' in html
    assert 'id="sample-chart" data-line-chart=\'{"markers": [{"label": "v2"' in html


def test_the_layout_loads_only_local_assets_and_each_is_served(client: TestClient) -> None:
    links = asset_links(client.get("/test/page").text)

    assert {link.split("?")[0] for link in links} == LAYOUT_ASSETS
    for link in links:
        assert link.startswith("/static/"), f"{link} is not served by the gateway itself"
        response = client.get(link)
        assert response.status_code == 200, link
        # The ?v= fingerprint is the file's own hash, so a changed file gets a new URL.
        fingerprint = link.split("?v=")[1]
        assert hashlib.sha256(response.content).hexdigest().startswith(fingerprint), link


@pytest.mark.parametrize(
    "asset", sorted(str(p.relative_to(STATIC_DIR)) for p in STATIC_DIR.rglob("*") if p.suffix in CONTENT_TYPES)
)
def test_static_files_are_served_with_their_content_type(client: TestClient, asset: str) -> None:
    response = client.get(f"/static/{asset}")

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPES[Path(asset).suffix]
    assert response.content == (STATIC_DIR / asset).read_bytes()


def test_a_missing_static_file_is_a_404(client: TestClient) -> None:
    assert client.get("/static/vendor/htmx/nope.js").status_code == 404
    assert client.get("/static/../templating.py").status_code == 404


def test_values_are_escaped_in_markup_and_in_embedded_json(client: TestClient) -> None:
    html = client.get("/test/escaping").text

    assert EVIL not in html
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; · Fluxo</title>" in html
    # In the chart's JSON the label can end neither the attribute nor the element.
    assert r'"label": "\u003cscript\u003ealert(1)\u003c/script\u003e"' in html
    assert "data-line-chart='" in html
    # Autoescaping is on for any template, not only the ones named *.html.
    assert make_environment().from_string("{{ value }}").render(value=EVIL) == (
        "&lt;script&gt;alert(1)&lt;/script&gt;"
    )


def test_line_chart_refuses_series_of_another_length() -> None:
    with pytest.raises(ValueError, match="'load' has 2 values for 3 x positions"):
        line_chart([1, 2, 3], {"load": [1.0, 2.0]})


# --- What ships ----------------------------------------------------------------


def versions_table() -> dict[str, tuple[int, str]]:
    """VERSIONS.md's file table: vendored path -> (bytes, sha256)."""
    rows = re.findall(r"^\| (\S+) \| (\d+) \| `([0-9a-f]{64})` \|$", (VENDOR_DIR / "VERSIONS.md").read_text(), re.M)
    return {path: (int(size), digest) for path, size, digest in rows}


def test_vendored_files_are_exactly_those_listed_in_versions_md() -> None:
    listed = versions_table()
    on_disk = {
        str(path.relative_to(VENDOR_DIR)) for path in VENDOR_DIR.rglob("*") if path.is_file()
    } - {"VERSIONS.md"}

    assert set(listed) == on_disk
    for path, (size, digest) in listed.items():
        content = (VENDOR_DIR / path).read_bytes()
        assert (len(content), hashlib.sha256(content).hexdigest()) == (size, digest), (
            f"{path} was changed by hand: re-run python -m deploy.console.vendor"
        )
    for package in {path.split("/")[0] for path in listed}:
        assert f"{package}/LICENSE" in listed, f"{package} ships without its licence"


def test_package_data_covers_every_template_and_static_file() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["services.gateway.console"]
    shipped = {path for pattern in patterns for path in CONSOLE_DIR.glob(pattern) if path.is_file()}
    needed = {
        path for folder in ("templates", "static") for path in (CONSOLE_DIR / folder).rglob("*") if path.is_file()
    }

    assert needed, "no console files found"
    assert needed <= shipped, f"not in the wheel: {sorted(str(p) for p in needed - shipped)}"


# --- In a real browser ---------------------------------------------------------


@pytest.fixture(scope="module")
def console_url() -> Iterator[str]:
    with serving(console_app()) as url:
        yield url


def test_overview_loads_cleanly_and_draws_the_sample_chart(
    browser_page: BrowserPage, screenshot: Screenshot, console_url: str
) -> None:
    page = browser_page.page
    page.goto(f"{console_url}/test/page", wait_until="load")
    page.wait_for_selector("#sample-chart canvas")

    libraries = page.evaluate(
        "() => ({htmx: window.htmx && htmx.version, sse: typeof htmx.createEventSource,"
        " uPlot: typeof window.uPlot, fluxo: typeof window.Fluxo})"
    )
    assert libraries == {"htmx": "2.0.11", "sse": "function", "uPlot": "function", "fluxo": "object"}
    box = page.locator("#sample-chart canvas").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100, box
    # uPlot painted the lines: the canvas is not blank.
    painted = page.evaluate(
        """() => {
            const canvas = document.querySelector('#sample-chart canvas');
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let count = 0;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) count++;
            return count;
        }"""
    )
    assert painted > 1000, f"only {painted} painted pixels"
    assert page.locator(".u-legend .u-label").all_inner_texts()[1:] == ["sample load", "baseline"]
    assert page.locator("nav [aria-current=page]").inner_text() == "Overview"

    shot = screenshot("layout-check")
    assert shot.read_bytes().startswith(b"\x89PNG")
    browser_page.assert_no_problems()


def test_an_escaped_value_stays_text_in_the_browser(browser_page: BrowserPage, console_url: str) -> None:
    page = browser_page.page
    page.goto(f"{console_url}/test/escaping", wait_until="load")
    page.wait_for_selector("#sample-chart canvas")

    assert page.title() == f"{EVIL} · Fluxo"
    assert page.locator(".u-legend .u-label").all_inner_texts()[1:] == [EVIL]
    assert page.locator("script:not([src]):not([type='application/json'])").count() == 0
    browser_page.assert_no_problems()  # an alert() would be recorded as a dialog


def test_the_api_key_is_kept_per_tab_and_sent_with_htmx_requests(
    browser_page: BrowserPage, console_url: str
) -> None:
    page = browser_page.page
    page.goto(f"{console_url}/test/page", wait_until="load")
    state = page.locator("[data-api-key-state]")
    assert state.inner_text() == "no key"

    # Without a key the gateway says 401 and the console asks for one.
    page.evaluate("() => htmx.ajax('GET', '/test/echo-key', {target: '#main', swap: 'innerHTML'})")
    page.wait_for_function("() => document.querySelector('[data-api-key-state]').dataset.state === 'needed'")
    assert state.inner_text() == "key needed"
    assert page.evaluate("() => document.activeElement.id") == "api-key-input"

    page.fill("#api-key-input", "s3cret-key")
    page.click("[data-api-key-form] button[type=submit]")
    assert state.inner_text() == "key set"
    assert page.input_value("#api-key-input") == ""  # not left on screen
    assert page.evaluate("() => sessionStorage.getItem('fluxo.apiKey')") == "s3cret-key"

    page.evaluate("() => htmx.ajax('GET', '/test/echo-key', {target: '#main', swap: 'innerHTML'})")
    page.wait_for_function("() => document.querySelector('#main').textContent === 'key=s3cret-key'")

    page.click("[data-api-key-forget]")
    assert state.inner_text() == "no key"
    assert page.evaluate("() => sessionStorage.getItem('fluxo.apiKey')") is None
    # The one 401 above was the point of the test; nothing else may have gone wrong.
    browser_page.assert_no_problems("/test/echo-key", "htmx:responseError")


def test_a_live_part_is_updated_by_server_sent_events(browser_page: BrowserPage, console_url: str) -> None:
    page = browser_page.page
    page.goto(f"{console_url}/test/live", wait_until="load")

    page.wait_for_function(f"() => document.querySelector('#live').textContent === 'tick {TICKS}'")
    assert page.locator("#live b").inner_text() == f"tick {TICKS}"
    browser_page.assert_no_problems()

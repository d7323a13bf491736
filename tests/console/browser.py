"""What a browser test looks at: a Playwright page and what went wrong on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from playwright.sync_api import ConsoleMessage, Dialog, Page, Request, Response


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class BrowserPage:
    """A Playwright page and what went wrong on it so far."""

    page: Page
    problems: list[str] = field(default_factory=list)

    def watch(self) -> BrowserPage:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught exception: {error}"))
        self.page.on("dialog", self._on_dialog)
        self.page.on("requestfailed", self._on_request_failed)
        self.page.on("response", self._on_response)
        return self

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            location = message.location or {}
            where = f" ({location.get('url', '')}:{location.get('lineNumber', '')})" if location else ""
            self.problems.append(f"console error: {message.text}{where}")

    def _on_dialog(self, dialog: Dialog) -> None:
        # No console page opens alert/confirm/prompt; one that appears is
        # likely injected script. Dismiss it so the page goes on.
        self.problems.append(f"unexpected {dialog.type} dialog: {dialog.message!r}")
        dialog.dismiss()

    def _on_request_failed(self, request: Request) -> None:
        # A live part's request still in flight when the test leaves the page is
        # cancelled by the browser (net::ERR_ABORTED): nothing failed. A server
        # that is down or answers badly shows as another error or as a status.
        if request.failure == "net::ERR_ABORTED" and request.resource_type in ("xhr", "fetch", "eventsource"):
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _on_response(self, response: Response) -> None:
        if response.status < 400:
            return
        request = response.request
        # A navigation is the page itself; anything else counts when it comes
        # from the page's own origin (other origins already fail as requests:
        # the test machine reaches nothing but loopback).
        if request.is_navigation_request() or _origin(response.url) == _origin(request.frame.url):
            self.problems.append(f"HTTP {response.status}: {request.method} {response.url}")

    def assert_no_problems(self, *allowed: str) -> None:
        """Fail with every console error, failed request and bad answer seen so far,
        except those that contain one of the `allowed` strings (a test's expected 401, say)."""
        unexpected = [problem for problem in self.problems if not any(text in problem for text in allowed)]
        assert not unexpected, "the page had problems:\n  " + "\n  ".join(unexpected)


class Screenshot(Protocol):
    def __call__(self, name: str) -> Path: ...

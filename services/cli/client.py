"""HTTP calls to the gateway, with every failure turned into one clear message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
API_KEY_HEADER = "X-API-Key"


class CliError(Exception):
    """A failure to report on stderr; ``code`` becomes the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def describe_http_error(response: httpx.Response) -> str:
    """``error 422: detail`` plus one line per field, from the gateway's error body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = response.text.strip()[:300] or response.reason_phrase
        return f"error {response.status_code}: {text}"
    lines = [f"error {response.status_code}: {body.get('detail', response.reason_phrase)}"]
    for item in body.get("errors", [])[:20]:
        where = f"row {item['row']}: " if item.get("row") is not None else ""
        where += f"record {item['index']}: " if item.get("index") is not None else ""
        lines.append(f"  {where}{item.get('field')}: {item.get('reason')}")
    train = body.get("how_to_train")
    if isinstance(train, dict):
        lines.append(f"  to train one: fluxo train --stream {body.get('stream')} --task {body.get('task')}")
    return "\n".join(lines)


class Gateway:
    def __init__(self, url: str, api_key: str | None, timeout: float) -> None:
        self.url = url.rstrip("/")
        headers = {API_KEY_HEADER: api_key} if api_key else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError as error:
            raise CliError(
                f"cannot reach the gateway at {self.url} ({error}); is it running? "
                "Set its address with --url or FLUXO_URL.", code=2
            ) from None
        except httpx.TimeoutException:
            raise CliError(f"the gateway at {self.url} did not answer in time (--timeout)", code=2) from None
        except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError) as error:
            raise CliError(f"the connection to {self.url} broke: {error}", code=2) from None
        except httpx.InvalidURL as error:
            raise CliError(f"invalid gateway address {self.url!r}: {error}", code=2) from None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._errors():
            response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise CliError(describe_http_error(response))
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

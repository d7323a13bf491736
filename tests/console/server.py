"""An ASGI app served by uvicorn in a background thread, for browser tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from shared.infra.ports import HOST, free_port

START_DEADLINE_SECONDS = 20.0
STOP_DEADLINE_SECONDS = 10.0


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Serve app on 127.0.0.1 at a free port; yields its base URL ("http://127.0.0.1:N")."""
    port = free_port()
    # Off the main thread uvicorn installs no signal handlers, so the test
    # run's Ctrl-C still reaches pytest.
    config = uvicorn.Config(
        # An open event stream must not hold the shutdown up past the deadline below.
        app, host=HOST, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"uvicorn on port {port} exited before it was ready (port taken?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn on port {port} was not ready in {START_DEADLINE_SECONDS:.0f} s")
            time.sleep(0.02)
        yield f"http://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_DEADLINE_SECONDS)
        if thread.is_alive():
            raise RuntimeError(f"uvicorn on port {port} did not stop in {STOP_DEADLINE_SECONDS:.0f} s")

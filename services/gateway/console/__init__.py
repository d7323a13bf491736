"""The web console: server-rendered pages at `/`, with their scripts and
stylesheets shipped in this package (no CDN, no Node.js at run time).

The gateway's create_app calls install_console(app), and its lifespan
stop_console(app) on shutdown.
"""

from services.gateway.console.live.runtime import stop_console
from services.gateway.console.routes import install_console

__all__ = ["install_console", "stop_console"]

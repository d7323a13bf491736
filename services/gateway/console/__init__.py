"""The web console: server-rendered pages at `/`, with their scripts and
stylesheets shipped in this package (no CDN, no Node.js at run time).

The gateway's create_app calls install_console(app).
"""

from services.gateway.console.routes import install_console

__all__ = ["install_console"]

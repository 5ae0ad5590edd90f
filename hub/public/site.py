"""The public site: an aiohttp application on the hub's event loop, with no credentials.

Other parts mount their handlers with :meth:`PublicSite.add_get` before :meth:`start` (the
inspection feed, a JWKS document). ``public_port`` (``HUB_PUBLIC_PORT``) is off by default: a second
listener without authentication is something an operator turns on, not something a hub has by accident.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from aiohttp import typedefs, web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]

_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'",
}


@web.middleware
async def _security_headers(request: web.Request, handler: typedefs.Handler) -> web.StreamResponse:
    response = await handler(request)
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class PublicSite:
    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._requested_port = port
        self._app = web.Application(middlewares=[_security_headers])
        self._runner: web.AppRunner | None = None
        self.port = 0

    def add_get(self, path: str, handler: Handler) -> None:
        """Serves GET (and HEAD) ``path`` (aiohttp's route syntax, e.g. ``/results/{id}``) with ``handler``."""
        self._app.router.add_get(path, handler)

    async def start(self) -> int:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._requested_port, reuse_port=True)
        await site.start()
        server = cast(asyncio.Server | None, site._server)  # the bound port is only on the server's sockets
        self.port = (
            server.sockets[0].getsockname()[1] if server is not None and server.sockets else self._requested_port
        )
        log.info("public site on http://%s:%d/", self._host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

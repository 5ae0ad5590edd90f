"""The receipt-signing keys as a JWKS on the public HTTP endpoint, for reviewers and their tools.

Mount ``jwks_handler(signer.jwks)`` (any callable returning the current set) at :data:`JWKS_PATH`.
The set changes only when keys rotate or are revoked, so caches may keep it briefly; a revocation
reaches readers within ``MAX_AGE_S``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

JWKS_PATH = "/.well-known/jwks.json"
MAX_AGE_S = 300


def jwks_handler(current: Callable[[], dict]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def jwks(request: web.Request) -> web.Response:
        return web.Response(
            body=orjson.dumps(current()),
            content_type="application/jwk-set+json",
            headers={"Cache-Control": f"public, max-age={MAX_AGE_S}"},
        )

    return jwks

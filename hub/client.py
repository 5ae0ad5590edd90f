"""Channels to a hub, for the hub's own tools (connectors, demo, load tests, CLI) and for tests.

With mutual TLS a caller presents its department certificate; in insecure development mode it
names its department in the ``x-hub-department`` header instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc import aio

from hub.governance.identity import DEPARTMENT_HEADER, SUBSYSTEM_HEADER

DEFAULT_OPTIONS = (("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20))


class _Headers(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._metadata = tuple(metadata)

    def _details(self, details):
        return details._replace(metadata=tuple(details.metadata or ()) + self._metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)


def identity_headers(department: str, subsystem: str = "") -> list[tuple[str, str]]:
    headers = [(DEPARTMENT_HEADER, department)]
    if subsystem:
        headers.append((SUBSYSTEM_HEADER, subsystem))
    return headers


def credentials(ca: Path, cert: Path, key: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(ca.read_bytes(), key.read_bytes(), cert.read_bytes())


def open_channel(
    address: str, *, department: str | None = None, subsystem: str = "", tls: tuple[Path, Path, Path] | None = None
) -> grpc.Channel:
    """A blocking channel. ``tls`` is (CA certificate, department certificate, key)."""
    if tls is not None:
        return grpc.secure_channel(address, credentials(*tls), options=DEFAULT_OPTIONS)
    channel = grpc.insecure_channel(address, options=DEFAULT_OPTIONS)
    if department:
        channel = grpc.intercept_channel(channel, _Headers(identity_headers(department, subsystem)))
    return channel


class _AioHeaders:
    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._metadata = tuple(metadata)

    def _details(self, details):
        return details._replace(metadata=aio.Metadata(*(tuple(details.metadata or ()) + self._metadata)))


# grpc.aio files each interceptor under one kind only, so unary and streaming calls need one each.
class _AioUnaryHeaders(_AioHeaders, aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(self._details(details), request)


class _AioStreamHeaders(_AioHeaders, aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(self._details(details), request)


def open_aio_channel(
    address: str, *, department: str | None = None, subsystem: str = "", tls: tuple[Path, Path, Path] | None = None
) -> aio.Channel:
    """An asyncio channel, as :func:`open_channel`."""
    if tls is not None:
        return aio.secure_channel(address, credentials(*tls), options=DEFAULT_OPTIONS)
    headers = identity_headers(department, subsystem) if department else None
    interceptors = [_AioUnaryHeaders(headers), _AioStreamHeaders(headers)] if headers else None
    return aio.insecure_channel(address, options=DEFAULT_OPTIONS, interceptors=interceptors)

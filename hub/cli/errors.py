"""The command line's error boundary: a mistake is one line on stderr and an exit code, never a traceback.

Known kinds of failure (bad arguments or settings, a missing file, an unreachable hub or broker, a
port in use) map to a message here, in one place. Anything else is a bug: one line too, and with
``--log-level DEBUG`` (or ``HUB_LOG_LEVEL=DEBUG``) its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from pydantic import ValidationError

log = logging.getLogger("hub.cli")

USAGE = 2  # as argparse exits on a usage error
FAILED = 1
BUG = 70  # EX_SOFTWARE
INTERRUPTED = 130


class CommandError(Exception):
    """A failure the user can act on; its text is the whole message."""

    exit_code = FAILED


class UsageError(CommandError):
    """Arguments or settings that cannot work together."""

    exit_code = USAGE


class Parser(argparse.ArgumentParser):
    """argparse's usage errors as one line (its default prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _setting_errors(exc: ValidationError) -> str:
    """Each error as ``field: why``; one about several fields names them in its message."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"].removeprefix("Value error, ")
        for e in exc.errors()
    )


def describe(exc: BaseException) -> tuple[str, int] | None:
    """The message and exit code of a known failure; None for a bug."""
    import tomllib

    import grpc
    from confluent_kafka import KafkaException
    from pydantic import ValidationError

    from hub.connect.registry import UnknownConnector
    from hub.errors import HubError
    from hub.governance.pki import UnknownCertificate
    from hub.settings import SettingsError

    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", INTERRUPTED
    if isinstance(exc, CommandError):
        return str(exc), exc.exit_code
    if isinstance(exc, ValidationError):
        return f"invalid setting {_setting_errors(exc)}", USAGE
    if isinstance(exc, SettingsError | UnknownConnector | tomllib.TOMLDecodeError):
        return str(exc), USAGE
    if isinstance(exc, UnknownCertificate):
        return exc.args[0], FAILED
    if isinstance(exc, OSError):
        if exc.strerror and exc.filename:
            return f"{exc.strerror}: {exc.filename}", FAILED
        return str(exc) or type(exc).__name__, FAILED
    if isinstance(exc, grpc.RpcError) and isinstance(exc, grpc.Call):
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return f"cannot reach the hub: {exc.details()}", FAILED
        return f"the hub answered {exc.code().name}: {exc.details()}", FAILED
    if isinstance(exc, KafkaException):
        return f"Kafka: {exc.args[0].str()}", FAILED
    if isinstance(exc, HubError | TimeoutError):
        return str(exc), FAILED
    return None


def run_guarded(prog: str, command: Callable[[], int]) -> int:
    """Runs ``command``; a failure becomes ``prog: error: ...`` on stderr and its exit code."""
    try:
        return command()
    except (Exception, KeyboardInterrupt) as exc:
        message, code = describe(exc) or (
            f"unexpected {type(exc).__name__}: {exc} (a bug; with --log-level DEBUG its traceback is logged)",
            BUG,
        )
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s failed", prog, exc_info=True)
        print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
        return code

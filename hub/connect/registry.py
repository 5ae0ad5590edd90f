"""Finds a connector class by short name (``population``) or dotted path (``pkg.mod:Class``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from hub.connect.source import Connector


class UnknownConnector(ValueError):
    """No connector class under the name given (a user's typo, not a bug)."""


def resolve_connector(name: str) -> type[Connector]:
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UnknownConnector(f"cannot load {name}: {exc}") from exc
        if not (inspect.isclass(obj) and issubclass(obj, Connector)):
            raise UnknownConnector(f"{name} is not a Connector class")
        return obj
    try:
        module = importlib.import_module(f"connectors.{name}")
    except ModuleNotFoundError as exc:
        known = ", ".join(available())
        raise UnknownConnector(f"no connector named {name!r} (known: {known}; or use package.module:Class)") from exc
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if issubclass(obj, Connector) and obj is not Connector and obj.__module__ == module.__name__:
            return obj
    raise UnknownConnector(f"connectors.{name} defines no Connector class")


def available() -> list[str]:
    import connectors

    return sorted(m.name for m in pkgutil.iter_modules(connectors.__path__) if not m.name.startswith("_"))

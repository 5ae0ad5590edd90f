"""Command-line options generated from the settings models, so a setting is described once.

Each field becomes ``--field-name``: its type gives the argparse type or choices, its description
the help, and the model's default is shown (the argparse default stays ``None``, so an unset option
leaves the value to the environment and then the model). Secrets (``SecretStr`` fields) get no
option: a command line shows in ``ps`` and shell history, so they come from the environment only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from hub.cli.errors import UsageError
from hub.settings import HubSettings, secret_fields

# The options of commands that start a broker or read hub topics without serving (demo, broker, audit).
COMMON_HUB_OPTIONS = (
    "bootstrap_servers",
    "embedded_broker",
    "host",
    "port",
    "data_dir",
    "topic_prefix",
    "catalogue_path",
    "log_level",
    "tls_dir",
    "insecure_dev",
)
_METAVAR_BY_NAME = {"bootstrap_servers": "HOST:PORT,...", "holidays": "DATE,..."}
_METAVAR_BY_TYPE: dict[Any, str] = {int: "N", float: "N", Path: "PATH", dt.datetime: "ISO-8601"}


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _show_default(value: object, annotation: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return repr(value) if annotation is str else str(value)


def _argument(name: str, field: FieldInfo) -> dict[str, Any]:
    """argparse keyword arguments for one model field."""
    annotation = _unwrap_optional(field.annotation)
    help_text = field.description or ""
    if field.default not in (None, "", ()) and not field.is_required():
        help_text += f" Default: {_show_default(field.default, annotation)}."
    kwargs: dict[str, Any] = {"help": help_text, "default": None, "dest": name}
    convert: Callable[[str], Any] | None = {int: int, float: float, Path: Path}.get(annotation)
    if annotation is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif get_origin(annotation) is Literal:
        kwargs["choices"] = list(get_args(annotation))
    elif get_origin(annotation) is tuple:
        kwargs["type"] = _comma_list  # the model validates each item
    elif convert is not None:
        kwargs["type"] = convert
    elif annotation not in (str, dt.datetime):  # a datetime stays text: the model parses ISO 8601
        raise TypeError(f"no command-line form for setting {name}: {annotation}")
    metavar = _METAVAR_BY_NAME.get(name) or _METAVAR_BY_TYPE.get(annotation)
    if metavar and "choices" not in kwargs and annotation is not bool:
        kwargs["metavar"] = metavar
    return kwargs


def add_model_options(
    group: argparse._ArgumentGroup | argparse.ArgumentParser, model: type[BaseModel], names: Iterable[str]
) -> None:
    """One option per named field of ``model`` (secrets excepted)."""
    secrets = secret_fields(model)
    for name in names:
        if name not in secrets:
            group.add_argument(f"--{name.replace('_', '-')}", **_argument(name, model.model_fields[name]))


def add_hub_options(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """The hub settings as options: every field of :class:`HubSettings`, or only ``names``."""
    secrets = ", ".join(f"HUB_{name.upper()}" for name in secret_fields(HubSettings))
    group = parser.add_argument_group(
        "hub settings", f"Each also reads HUB_<OPTION> from the environment; secrets only from there: {secrets}."
    )
    add_model_options(group, HubSettings, HubSettings.model_fields if names is None else names)


def settings_from(args: argparse.Namespace) -> HubSettings:
    """The hub settings: options given on the command line, then HUB_* variables, then defaults."""
    names = HubSettings.model_fields.keys()
    return HubSettings(**{k: v for k, v in vars(args).items() if k in names and v is not None})


def add_client_options(parser: argparse.ArgumentParser, department: bool = True) -> None:
    g = parser.add_argument_group("connecting to the hub")
    g.add_argument("--hub", default="127.0.0.1:50051", help="Hub address HOST:PORT. Default: 127.0.0.1:50051.")
    g.add_argument("--ca", type=Path, help="The hub CA's certificate (ca.crt), for mutual TLS.")
    g.add_argument("--cert", type=Path, help="This department's certificate, for mutual TLS.")
    g.add_argument("--key", type=Path, help="This department's private key, for mutual TLS.")
    if department:
        g.add_argument("--department", help="Without a certificate: the department to claim (insecure dev mode).")


def tls_paths(args: argparse.Namespace) -> tuple[Path, Path, Path] | None:
    """(CA, certificate, key) from the client options, or None for insecure development mode."""
    if args.cert or args.key or args.ca:
        if not (args.cert and args.key and args.ca):
            raise UsageError("mutual TLS needs --ca, --cert and --key together")
        return args.ca, args.cert, args.key
    return None

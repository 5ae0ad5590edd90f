"""The ``hub`` command line (:mod:`hub.cli.main` assembles the command groups)."""

from hub.cli.main import build_parser, main

__all__ = ["build_parser", "main"]

"""Runs the proto codegen as part of every build, editable installs included."""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).resolve().parent))


class BuildPyWithStubs(build_py):
    def run(self) -> None:
        from hub.codegen import generate

        generate()
        super().run()


setup(cmdclass={"build_py": BuildPyWithStubs})

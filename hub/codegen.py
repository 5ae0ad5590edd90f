"""The one codegen entry point: ``proto/hub/v1/*.proto`` → ``hub/v1/*_pb2*.py``.

The generated modules are not committed. They are written by the build
(``setup.py``), and :mod:`hub.v1` regenerates them on import when a proto file
has changed since the last run, so a developer editing a proto never runs stale
stubs. Output is written to a temporary directory first and moved into place,
so concurrent processes never import a half-written module.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
OUT_DIR = Path(__file__).resolve().parent / "v1"
STAMP = OUT_DIR / ".stamp"


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / "hub" / "v1").glob("*.proto"))


def fingerprint() -> str:
    """A digest of every proto file and the generator's version."""
    digest = hashlib.sha256(importlib.metadata.version("grpcio-tools").encode())
    for path in proto_files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def is_current() -> bool:
    """True when the generated stubs match the protos (or no protos ship, as in a wheel)."""
    if not PROTO_ROOT.is_dir():
        return True
    return STAMP.is_file() and STAMP.read_text() == fingerprint()


def generate() -> None:
    """Generates the Python messages, gRPC stubs and type stubs for ``hub.v1``."""
    from grpc_tools import protoc

    stamp = fingerprint()
    well_known = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory(dir=OUT_DIR.parent) as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *(str(p) for p in proto_files()),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed: {' '.join(args)}")
        for generated in (Path(tmp) / "hub" / "v1").iterdir():
            os.replace(generated, OUT_DIR / generated.name)
    stamp_tmp = STAMP.with_suffix(f".{os.getpid()}")
    stamp_tmp.write_text(stamp)
    os.replace(stamp_tmp, STAMP)


def ensure_generated() -> None:
    if not is_current():
        generate()


def main() -> None:
    generate()
    print(f"generated {len(proto_files())} proto files into {OUT_DIR}", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Generated messages and stubs of the public contract, package ``hub.v1``.

Import the modules directly, e.g. ``from hub.v1 import verification_pb2``.
"""

from hub.codegen import ensure_generated

ensure_generated()

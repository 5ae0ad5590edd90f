"""The exchange hub for city government data.

Kept free of imports so that the build (``setup.py`` runs :mod:`hub.codegen`)
does not need the runtime dependencies.
"""

__version__ = "0.1.0"

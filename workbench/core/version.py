"""The package's version, on the lowest floor so that any layer can name it (a store's
error names the version that wrote it) without importing the package's façade."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"  # as pyproject.toml's [project] version

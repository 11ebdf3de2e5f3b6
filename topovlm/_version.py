"""The package version: one source of truth, pyproject.toml's version as installed."""

from importlib import metadata

try:
    __version__ = metadata.version("topovlm")
except metadata.PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"

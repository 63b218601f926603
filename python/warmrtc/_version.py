"""The installed package version (pyproject.toml is the one place it is set)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("warmrtc")
except PackageNotFoundError:  # a source tree without an install
    __version__ = "0.0.0"

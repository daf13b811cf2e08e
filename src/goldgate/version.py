"""The package version, in its own module so results and records can stamp it without importing
the package root."""

__version__ = "0.1.0"

"""One exception hierarchy, so the CLI and the plugin can turn any of them into one clear line."""

from __future__ import annotations

__all__ = [
    "CacheError",
    "ConfigError",
    "GoldenFormatError",
    "GoldgateError",
    "MissingExtraError",
    "ModelCallError",
    "OutputError",
    "ResultsError",
]


class GoldgateError(Exception):
    """Base of every error goldgate raises on purpose; its message is a complete one-line report."""


class ConfigError(GoldgateError):
    """`[tool.goldgate]` is missing, malformed, or names something that does not exist."""


class GoldenFormatError(GoldgateError):
    """A golden file is unreadable or a record in it is invalid (the message names file:line)."""


class ModelCallError(GoldgateError):
    """A model call failed after its retries; the case that needed it is an error, not a crash."""


class CacheError(GoldgateError):
    """The call cache could not be opened or written."""


class ResultsError(GoldgateError):
    """A run directory is missing or its files do not follow the goldgate.run schema."""


class OutputError(GoldgateError):
    """A file or folder goldgate must write cannot be created there (e.g. its parent is a file)."""


class MissingExtraError(GoldgateError):
    """A command needs an optional dependency that is not installed; the message says which extra."""

"""Error types the CLI turns into a one-line message (no traceback) and an exit code."""

from __future__ import annotations


class AthanorError(Exception):
    """A failure with a message that already names the problem and the fix (exit code 1)."""

    exit_code = 1


class ConfigError(AthanorError, ValueError):
    """A usage or configuration error (exit code 2)."""

    exit_code = 2


class DataError(AthanorError):
    """A shipped or cached data file is missing, truncated or fails its checksum."""


class CheckpointError(AthanorError):
    """A checkpoint is missing, truncated, corrupt, or belongs to another system or config."""


class NonFiniteError(AthanorError):
    """Training produced a NaN or infinite value; the last good checkpoint is kept."""


class ResourceError(ConfigError):
    """The config asks for more memory than the machine has (exit code 2: lower a size with --set)."""

"""Errors that end a command with one line on stderr and a non-zero exit."""

from __future__ import annotations


class LoadgenError(Exception):
    """A user-facing problem: printed as ``loadgen: error: <message>``, exit code ``exit_code``.

    The message must fit on one line and say what to do; no traceback is shown.
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(" ".join(str(message).split()))  # force a single line
        if exit_code is not None:
            self.exit_code = exit_code


class ServerError(LoadgenError):
    """The embedded Milvus could not be started, reached or stopped."""


class CallTimeout(TimeoutError):
    """A Milvus call (or the async bridge waiting for one) ran past its deadline."""

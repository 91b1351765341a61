"""One base error; the CLI turns any of these into one clear message and exit code 2."""

from __future__ import annotations


class AuditorError(Exception):
    """Base of every error the auditor reports to its user (never as a traceback)."""

    exit_code = 2

    def diagnostics(self) -> str:
        """The message a compliance officer or CI log reader can act on."""
        return str(self)


class InputError(AuditorError):
    """Input could not be read: a missing file, an unreadable snapshot, nothing usable at all."""


class ProfileError(AuditorError):
    """A jurisdiction profile is invalid; the message names the file and the field."""


class EvidenceError(AuditorError):
    """An evidence snapshot is malformed or its digest does not match its content."""


class OutputError(AuditorError):
    """A report or snapshot could not be written (read-only location, full disk, ...); the message names the path."""


def short(exc: BaseException, limit: int = 200) -> str:
    """An exception as one line for a message: its first line (its type when it has no text), at most ``limit``
    characters."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."

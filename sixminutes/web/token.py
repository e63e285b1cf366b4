"""The service's token: configured, or generated at first start and kept beside the state file.

There is always a token, so no mutation is ever open to whoever reaches the port (or to a web
page the operator happens to open). When none is configured, one is generated with
``secrets.token_urlsafe`` and written to ``<state>.token`` with mode 0600, so that it survives
restarts and FreeSWITCH's ``cred`` keeps working; an in-memory state (``:memory:``) gets one per
process. The file is written under a temporary name and linked into place, so that two services
starting at once agree on one token and neither ever reads a half-written file.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Token", "TokenError", "resolve_token", "token_path"]

log = logging.getLogger("sixminutes")
_MODE = 0o600


class TokenError(ValueError):
    """A token file that cannot be read or written; the message says which and why."""


@dataclass(frozen=True)
class Token:
    """The token and where it came from: ``configured``, ``created`` or ``reused`` (a file),
    or ``process`` (in-memory state: this process only)."""

    value: str
    origin: str
    path: Path | None = None

    @property
    def generated(self) -> bool:
        return self.origin != "configured"


def token_path(state: str) -> Path | None:
    """Where the generated token of a state file is kept; None for an in-memory state."""
    if not state or state == ":memory:" or state.startswith("file::memory:"):
        return None
    return Path(state + ".token")


def resolve_token(configured: str | None, state: str) -> Token:
    """The configured token, else the one kept beside ``state`` (created on first start)."""
    if configured is not None:
        if not configured.strip():
            raise TokenError("the token is empty: give a real one, or none to have one "
                             "generated and kept beside the state file")
        return Token(configured, "configured")
    path = token_path(state)
    if path is None:
        return Token(secrets.token_urlsafe(32), "process")
    try:
        return Token(_read(path), "reused", path)
    except FileNotFoundError:
        pass
    try:
        _create(path, secrets.token_urlsafe(32))
    except FileExistsError:  # another process created it meanwhile: use theirs
        return Token(_read(path), "reused", path)
    return Token(_read(path), "created", path)


def _read(path: Path) -> str:
    try:
        info = path.stat()
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise  # not created yet
    except (OSError, UnicodeDecodeError) as error:
        raise TokenError(f"cannot read the token file {path}: {error}") from None
    if not value:
        raise TokenError(f"the token file {path} is empty: delete it to have a new token "
                         "generated, or write one in it")
    if stat.S_IMODE(info.st_mode) & 0o077:
        log.warning("the token file %s can be read by others (mode %o): chmod 600 it",
                    path, stat.S_IMODE(info.st_mode))
    return value


def _create(path: Path, value: str) -> None:
    """Write ``value`` to a new file (0600) and link it into place; FileExistsError if the
    name is taken, so an existing token is never replaced."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _MODE)
    except OSError as error:
        raise TokenError(f"cannot create the token file {path}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(value + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)  # atomic, and never replaces an existing file
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: create the name itself
            _create_in_place(path, value)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _create_in_place(path: Path, value: str) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _MODE)
    except FileExistsError:
        raise
    except OSError as error:
        raise TokenError(f"cannot create the token file {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(value + "\n")

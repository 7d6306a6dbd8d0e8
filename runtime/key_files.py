"""Keys kept like secrets: from a setting (comma-separated, newest first, to rotate) or from a
0600 file in the data folder made on first start. The master key (sealing) and the API's
signing key are both kept this way."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path

from runtime.errors import ConfigurationError

__all__ = ["load_keys"]


def load_keys(
    value: str | None, path: Path, *, setting: str, what: str, exact: bool
) -> tuple[bytes, ...]:
    """The keys in ``value`` when given, else in ``path`` (made on first start). ``exact``:
    each key is 32 bytes (AES-256); otherwise 32 bytes or more. Problems are one line naming
    the setting or the file, and ``what`` ("master key", "signing key")."""
    if value:
        return _parse(value, setting, exact)
    if not path.exists():
        _create(path, what)
    return _parse(_read(path, what), str(path), exact)


def _parse(text: str, source: str, exact: bool) -> tuple[bytes, ...]:
    entries = [e.strip() for e in text.replace("\n", ",").split(",") if e.strip()]
    if not entries:
        raise ConfigurationError(f"{source}: no key given")
    return tuple(_decode(entry, number, source, exact) for number, entry in enumerate(entries, 1))


def _decode(entry: str, number: int, source: str, exact: bool) -> bytes:
    try:
        key = base64.b64decode(entry, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if (len(key) != 32) if exact else (len(key) < 32):
        size = "32 bytes" if exact else "32 or more bytes"
        raise ConfigurationError(
            f"{source}: key {number} is not base64 of {size} (make one with "
            '`python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"`)'
        )
    return key


def _read(path: Path, what: str) -> str:
    try:
        mode = path.stat().st_mode
        if mode & 0o077:
            raise ConfigurationError(
                f"{path}: the {what} file is readable by other users "
                f"(mode {mode & 0o777:o}); run chmod 600 {path}"
            )
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read the {what} file: {exc}") from None


def _create(path: Path, what: str) -> None:
    """Write a new key to ``path`` with mode 0600; a process that lost the race keeps the
    winner's key (the file appears whole, by a hard link of a finished temporary file)."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot create the {what} file: {exc}") from None
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink()

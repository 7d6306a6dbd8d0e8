"""Random identifiers for deliveries, messages and log events (128 bits, hex).

The bytes come from the OS's CSPRNG 4 KiB at a time, 256 identifiers a read: a read is a
system call that lets go of the GIL, and the log writer thread, waiting for it, then takes it
from the event loop. One read a message cost the pipeline about 6 % of its throughput at 50
messages in flight (bench/pipeline.py). Each identifier is a slice no other call gets:
``next()`` on an ``itertools.count`` is atomic under the GIL, and a buffer is never used in a
process other than the one that read it (a forked child reads its own).
"""

from __future__ import annotations

import itertools
import os

__all__ = ["new_id"]

_ID_BYTES = 16
_BUFFER_BYTES = 4096

# (the process that read it, the bytes, the next slice's number): replaced as a whole, so a
# thread that read it has a consistent triple whatever another thread does meanwhile
_state: tuple[int, bytes, itertools.count[int]] = (0, b"", itertools.count())


def _forget() -> None:
    """In a forked child: never a slice of the parent's block (the pid check covers a child
    made by libc's fork too; this covers a child that has its parent's pid, in a new pid
    namespace)."""
    global _state
    _state = (0, b"", itertools.count())


os.register_at_fork(after_in_child=lambda: _forget())


def new_id() -> str:
    """32 hex characters from the OS's CSPRNG; as unique as a UUID4, at a fraction of the cost."""
    global _state
    while True:
        pid, buffer, slices = _state
        start = next(slices) * _ID_BYTES
        if start < len(buffer) and pid == os.getpid():
            return buffer[start : start + _ID_BYTES].hex()
        # used up (other threads may have used up a block read meanwhile too: read again)
        _state = (os.getpid(), os.urandom(_BUFFER_BYTES), itertools.count())

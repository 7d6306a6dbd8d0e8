"""A worker's exit statuses: the last thing it tells the supervisor, read from ``waitpid``.

Shared because the worker loop exits with them and the host's zygote client turns them into
an outcome (``memory_limit``, an isolation failure, a protocol violation).
"""

from __future__ import annotations

from typing import Final

__all__ = ["EXIT_ISOLATION", "EXIT_MEMORY", "EXIT_PROTOCOL", "EXIT_TENANT"]

EXIT_PROTOCOL: Final = 3
"""The supervisor's frames broke the protocol (or the worker's own state did)."""
EXIT_TENANT: Final = 4
"""Asked to serve a second tenant: a bug that must not become shared state."""
EXIT_MEMORY: Final = 5
"""A ``MemoryError`` escaped tenant code."""
EXIT_ISOLATION: Final = 6
"""Binding to the tenant (uid, no_new_privs, seccomp) failed: tenant code never ran."""

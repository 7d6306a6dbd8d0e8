"""A uid per tenant, from the configured range, for the workers that serve it.

Why: processes of one uid may signal each other, count against each other's ``RLIMIT_NPROC``
and, without seccomp, read each other's ``/proc`` entries; with every tenant on ``nobody``,
one tenant's native code could reach another's worker. Each tenant's workers therefore run
as a uid of their own.

The uid is ``base + sha256(tenant) % count`` (stable across restarts and processes), and this
table makes it unique among the tenants that have live workers *in this pool*: when two live
tenants hash to the same uid, the later one takes the next free uid of the range. A uid is
only held while its tenant has workers (workers own no files: their root is empty and
read-only), so it is returned when the tenant's last worker is gone. Two pools on one host (two
API processes) allocate independently, so two tenants there may share a uid; with the default
range of 65,536 uids and 64 workers per pool this is rare, and seccomp (no ``kill``, ``ptrace``
or sockets) and ``hidepid`` still keep such workers apart.
"""

from __future__ import annotations

import hashlib
from collections import Counter

__all__ = ["TenantUids", "preferred_uid"]


def preferred_uid(tenant: str, base: int, count: int) -> int:
    """The tenant's uid when nobody else holds it."""
    digest = hashlib.sha256(tenant.encode("utf-8", "surrogatepass")).digest()
    return base + int.from_bytes(digest[:8], "big") % count


class TenantUids:
    """Uids held by tenants with live workers; at most one tenant per uid."""

    def __init__(self, base: int, count: int) -> None:
        if base < 1 or count < 1:
            raise ValueError("uid range: base and count must be positive")
        self.base = base
        self.count = count
        self._uid: dict[str, int] = {}
        self._holders: Counter[str] = Counter()
        self._tenant: dict[int, str] = {}

    def acquire(self, tenant: str) -> int:
        """The tenant's uid, held once more; ``RuntimeError`` if the whole range is held."""
        uid = self._uid.get(tenant)
        if uid is None:
            first = preferred_uid(tenant, self.base, self.count) - self.base
            for step in range(self.count):
                candidate = self.base + (first + step) % self.count
                if candidate not in self._tenant:
                    uid = candidate
                    break
            else:
                raise RuntimeError(f"all {self.count} sandbox uids are in use")
            self._uid[tenant] = uid
            self._tenant[uid] = tenant
        self._holders[tenant] += 1
        return uid

    def release(self, tenant: str) -> None:
        """One worker of ``tenant`` is gone; the uid is free once the last one is."""
        self._holders[tenant] -= 1
        if self._holders[tenant] <= 0:
            del self._holders[tenant]
            uid = self._uid.pop(tenant, None)
            if uid is not None:
                self._tenant.pop(uid, None)

    def held(self) -> dict[str, int]:
        """Tenant → uid for the tenants with live workers."""
        return dict(self._uid)

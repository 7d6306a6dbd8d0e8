"""The sandbox's trusted side: runs in the API process, never runs tenant code.

Runner, worker pool, zygote client, the ``api.*`` services (egress, cache), tenant uids.
Host code may import :mod:`runtime.sandbox.shared` and the guest's plain data; guest code
never imports anything here (``make lint``'s import contract, docs/architecture.md).
"""

"""The sandboxed executor of tenant actions (four layers: docs/sandbox.md).

``host/`` runs in the trusted API process, ``guest/`` in the zygote and its workers, ``shared/``
is the frame protocol between them (module map: docs/architecture.md).
"""

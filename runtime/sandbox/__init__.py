"""The sandboxed executor of tenant actions (four layers: docs/sandbox.md)."""

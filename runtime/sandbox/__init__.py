"""The sandboxed executor of tenant actions (SANDBOX.md's four layers)."""

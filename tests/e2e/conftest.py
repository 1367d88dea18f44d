"""End-to-end paths: real components of the repository wired together (see README.md here)."""

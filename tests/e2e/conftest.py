"""Fixtures for end-to-end tests: the real collector and processor as child processes."""

from e2e_support import config, services

__all__ = ["config", "services"]

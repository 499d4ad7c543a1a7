"""Helpers shared by the tests (a package, so tests never import conftest or each other)."""

"""Fixtures shared by the tests; helper functions live in the `helpers` package."""
from __future__ import annotations

from pathlib import Path

import pytest
from helpers.realdata import REALDATA


@pytest.fixture
def realdata() -> Path:
    assert REALDATA.is_dir(), f"the real samples are expected at {REALDATA}"
    return REALDATA

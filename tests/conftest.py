"""Shared fixtures: paths to the team's real fixtures (../shared/fixtures)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = Path(os.environ.get("NDVICUBE_SHARED", ROOT.parent / "shared")) / "fixtures"


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """The real Earth Search items and the real L2A scene (required: CI has ../shared)."""
    assert SHARED_FIXTURES.is_dir(), f"real fixtures not found at {SHARED_FIXTURES}"
    return SHARED_FIXTURES

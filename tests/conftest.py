"""Fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DIRECTORY = REPO / "provisioning" / "examples" / "small-office.toml"


@pytest.fixture
def example_directory_file() -> Path:
    """The shipped example directory (the server's embedded default)."""
    return EXAMPLE_DIRECTORY

"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.testing.clock import FakeClock

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DIRECTORY = REPO / "provisioning" / "examples" / "small-office.toml"


@pytest.fixture
def example_directory_file() -> Path:
    """The shipped example directory (the server's embedded default)."""
    return EXAMPLE_DIRECTORY


@pytest.fixture
def clock() -> FakeClock:
    """A clock the test moves by hand."""
    return FakeClock()


@pytest.fixture
async def app(tmp_path: Path, clock: FakeClock, example_directory_file: Path) -> AsyncIterator[App]:
    """An app over a fresh store in a temporary data directory, the example directory applied."""
    opened = await App.open(tmp_path / "data", clock=clock)
    await opened.directory.apply_file(example_directory_file)
    try:
        yield opened
    finally:
        await opened.close()

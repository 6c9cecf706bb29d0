"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.domain import pins
from sipvm.testing.clock import FakeClock

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_DIRECTORY = REPO / "provisioning" / "examples" / "small-office.toml"


PRODUCTION_SCRYPT_N = pins.SCRYPT_N
TEST_SCRYPT_N = 2**4
"""PIN hashes made in this process use a token cost: the production cost (~50 ms a hash) made
the fixture directories' PINs 90 % of the flow tests' time. Hashes stay self-describing, so
verification works the same; servers started as child processes keep the production cost."""


@pytest.fixture(autouse=True, scope="session")
def cheap_pin_hashes() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pins, "SCRYPT_N", TEST_SCRYPT_N)
        yield


@pytest.fixture
def production_pin_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """For a test of the hashing itself: new hashes at the cost the product ships with."""
    monkeypatch.setattr(pins, "SCRYPT_N", PRODUCTION_SCRYPT_N)


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

"""Fixtures for tests over a real store in a temporary data directory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.domain.messages import DepositFacts, Message
from sipvm.testing.clock import FakeClock
from tests.support.tones import write_tone_wav

Deposit = Callable[..., Awaitable[Message]]


@pytest.fixture
def deposit(app: App, clock: FakeClock, tmp_path: Path) -> Deposit:
    """Leave a message of ``seconds`` of a ``freq`` Hz tone in ``inbox``."""
    counter = iter(range(10**6))

    async def leave(
        inbox: str, *, freq: float = 1000.0, seconds: float = 3.0, caller: str = "5551234"
    ) -> Message:
        wav = write_tone_wav(tmp_path / f"tone-{next(counter)}.wav", freq, seconds)
        clock.advance(seconds=1)
        facts = DepositFacts(inbox=inbox, received_at=clock(), caller=caller, caller_name="Caller")
        message = await app.deposits.deposit_file(facts, wav)
        assert message is not None
        return message

    return leave

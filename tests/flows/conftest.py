"""Flow tests: the scripted fake channel against a real store, prompts as their ids."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sipvm.app import App
from sipvm.testing.clock import FakeClock

if TYPE_CHECKING:
    from tests.flows.menu_kit import MenuKit


class IdPrompts:
    """Each prompt is one 'file' named after its id, so transcripts read as prompt ids."""

    def __init__(self) -> None:
        self.fills: list[tuple[str, dict[str, object]]] = []

    def get(self, prompt_id: str, **fill: object) -> list[Path]:
        self.fills.append((prompt_id, fill))
        return [Path(f"{prompt_id}.wav")]


class DictGreetings:
    """Greetings by (inbox, kind)."""

    def __init__(self, files: dict[tuple[str, str], Path] | None = None) -> None:
        self.files = files or {}

    async def path_for(self, inbox: str, kind: str) -> Path | None:
        return self.files.get((inbox, kind))


@pytest.fixture
async def kit(app: App, clock: FakeClock, tmp_path: Path) -> MenuKit:
    """The menu test kit over the ``app`` store, its directory applied (Ann: play on 2001)."""
    from tests.flows.menu_kit import MenuKit  # it imports IdPrompts from here

    made = MenuKit(app, clock, tmp_path)
    await made.use_directory()
    return made

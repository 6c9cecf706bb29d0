"""Flow tests: the scripted fake channel against a real store, prompts as their ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.testing.clock import FakeClock


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
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def app(tmp_path: Path, clock: FakeClock, example_directory_file: Path) -> AsyncIterator[App]:
    opened = await App.open(tmp_path / "data", clock=clock)
    await opened.directory.apply_file(example_directory_file)
    try:
        yield opened
    finally:
        await opened.close()

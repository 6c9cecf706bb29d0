"""Flow tests: the scripted fake channel against a real store, prompts as their ids."""

from __future__ import annotations

from pathlib import Path


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

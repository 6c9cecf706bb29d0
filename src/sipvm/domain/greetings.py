"""A greeting in force for an inbox (the store keeps one per inbox and kind)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Greeting:
    """A greeting in force."""

    inbox: str
    """Extension of the inbox it greets callers of."""
    kind: str
    """``unavailable``, ``busy``, ``temporary``, ``name``, an auto receptionist's period
    (``business``, ``closed``, ``holiday``) or one of its menus (``menu-<name>``)."""
    audio: str
    """The converted WAV, relative to the data directory."""
    duration_ms: int
    """Length of the converted file."""
    uploaded_at: datetime
    """When it was uploaded (timezone-aware, UTC in the store)."""
    uploaded_by: str
    """Who uploaded it (``admin`` from the command line)."""

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.duration_ms / 1000

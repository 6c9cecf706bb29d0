"""Greetings whose "name" falls back to the directory name spoken by espeak-ng.

The call flows announce an inbox by its recorded name, else spell its extension. Wrapped in
:class:`SpokenNameGreetings`, an inbox with no recorded name is announced by its directory name
("Support") once :class:`sipvm.prompts.spoken_names.SpokenNames` has made it; until then (or
without espeak-ng) the flows spell the extension as before. Recording, removing and every other
kind of greeting are the wrapped service's, unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the roles it plays and wraps, as the flows name them
    from sipvm.flows.ports import DirectorySource, Greetings
    from sipvm.prompts.spoken_names import SpokenNames


class SpokenNameGreetings:
    """``greetings`` (the flows' ``Greetings``) with spoken directory names as the fallback
    of the ``name`` kind."""

    def __init__(self, greetings: Greetings, names: SpokenNames, directory: DirectorySource):
        self._greetings = greetings
        self._names = names
        self._directory = directory

    async def path_for(self, inbox: str, kind: str) -> Path | None:
        """The greeting in force; for ``name`` with none recorded, the spoken directory name
        when it is made (a cache lookup: nothing is spoken during a call)."""
        found = await self._greetings.path_for(inbox, kind)
        if found is not None or kind != "name":
            return found
        entry = self._directory.current.get(inbox)
        return self._names.path_for(entry.name) if entry is not None else None

    async def upload(self, inbox: str, kind: str, src: Path, *, by: str = "admin") -> object:
        """Record a greeting (the wrapped service's)."""
        return await self._greetings.upload(inbox, kind, src, by=by)

    async def remove(self, inbox: str, kind: str) -> object:
        """Remove a greeting (the wrapped service's)."""
        return await self._greetings.remove(inbox, kind)

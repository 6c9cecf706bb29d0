"""The prompts and spoken names as a serving process gets them ready.

``load_prepared`` loads the directory language's prompts (a missing sound stops the start)
and prepares them into ``DATA/prompt-cache/``; ``speak_names`` makes the spoken names of
every extension of a directory; ``follow_names`` does that at start and again whenever the
directory in force changes. A pool's supervisor runs the first two before it starts the
workers (``warm``), so every worker reads one warm cache.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sipvm.prompts import DEFAULT_SOUNDS_DIR, default_extra_dir, default_manifest, load_prompts
from sipvm.prompts.prepare import PROMPT_CACHE, prepare_prompts
from sipvm.prompts.prompt_set import PromptSet
from sipvm.prompts.spoken_names import NAMES_DIR, SpokenNames

if TYPE_CHECKING:
    from sipvm.domain.model import Directory
    from sipvm.flows.ports import DirectorySource

log = logging.getLogger(__name__)

FOLLOW_NAMES_S = 1.0
"""How often the spoken names look for a new directory in force."""


async def load_prepared(data: Path, language: str) -> PromptSet:
    """The prompts of ``language`` (overrides from ``DATA/prompts/``), prepared (made once,
    read back by every later start and every worker)."""
    prompts = load_prompts(
        default_manifest(),
        DEFAULT_SOUNDS_DIR,
        default_extra_dir(),
        language=language,
        overrides_dir=data / "prompts",
    )
    prompts, prepared = await asyncio.to_thread(prepare_prompts, prompts, data / PROMPT_CACHE)
    log.info("%s", prepared)
    return prompts


def spoken_names(data: Path) -> SpokenNames:
    """The spoken names kept in ``DATA/prompt-cache/names/``."""
    return SpokenNames(data / PROMPT_CACHE / NAMES_DIR)


async def speak_names(
    names: SpokenNames, directory: Directory, stop: threading.Event | None = None
) -> None:
    """Make the spoken name of every extension of ``directory`` not made yet (in a thread;
    ``stop`` ends it between two names); logs what it made."""
    texts = [entry.name for entry in directory.extensions.values()]
    ready, made = await asyncio.to_thread(names.make, texts, stop=stop)
    if made:
        log.info("spoken names: %d ready (%d made)", ready, made)


async def warm(data: Path, directory: Directory, *, names: bool) -> None:
    """Prepare the prompts and, with ``names``, speak the directory's names: what a pool's
    supervisor does before it starts the workers."""
    await load_prepared(data, directory.defaults.language)
    if names:
        await speak_names(spoken_names(data), directory)


async def follow_names(
    names: SpokenNames, directory: DirectorySource, first_round: asyncio.Event
) -> None:
    """Make the spoken names of every extension at start (``first_round`` is set when done)
    and whenever the directory in force changes, until cancelled (cancelling stops a round
    between two names)."""
    stop = threading.Event()
    done: Directory | None = None
    try:
        while True:
            current = directory.current
            if current is not done:
                done = current
                try:
                    await speak_names(names, current, stop)
                except Exception:  # keep serving calls: the extensions are spelled meanwhile
                    log.exception("spoken names failed")
                first_round.set()
            await asyncio.sleep(FOLLOW_NAMES_S)
    finally:
        stop.set()

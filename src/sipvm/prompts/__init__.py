"""Prompts: a prompt id from the manifest → the sound files to play, all checked at startup.

- :mod:`.manifest` reads ``prompts/manifest.toml`` and finds every sound a language needs
  (:func:`load_prompts`), refusing to start over a missing or unusable file;
- :mod:`.prompt_set` is what the flows play from: :class:`PromptSet` fills a prompt's
  placeholders (keys, numbers, dates) and hands back the files in order;
- :mod:`.english` says numbers, dates and phone keys in English, as Asterisk does.
- :mod:`.prepare` trims each sound's silent ends and levels its loudness once, at start
  (cached in ``DATA/prompt-cache/``), so that sentences strung from many sounds are brisk.
"""

from sipvm.errors import PromptError
from sipvm.prompts.english import EnglishSayer
from sipvm.prompts.manifest import (
    DEFAULT_SOUNDS_DIR,
    EXTRA_PREFIX,
    SAMPLE_BITS,
    SAMPLE_RATE,
    default_extra_dir,
    default_manifest,
    load_prompts,
)
from sipvm.prompts.prompt_set import PromptSet, Sayer

__all__ = [
    "DEFAULT_SOUNDS_DIR",
    "EXTRA_PREFIX",
    "SAMPLE_BITS",
    "SAMPLE_RATE",
    "EnglishSayer",
    "PromptError",
    "PromptSet",
    "Sayer",
    "default_extra_dir",
    "default_manifest",
    "load_prompts",
]

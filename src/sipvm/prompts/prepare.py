"""Prompt sounds made brisk and even, once: silence trimmed at both ends, loudness levelled.

Asterisk sound files carry 0.1 to 0.3 s of silence at each end, and a sentence strings 5 to 15 of
them; their levels differ by up to 8 dB. :func:`prepare_prompts` gives a :class:`PromptSet`
whose every sound is a prepared copy:

- the silence before the first and after the last loud sample is cut, keeping ``pad_ms`` of
  it at each end, so two words of a sentence are ``2 * pad_ms`` apart (a natural gap) and no
  word's start or end is clipped: a sample is loud when it reaches ``threshold_db`` below the
  file's peak;
- the loudness (RMS of what is kept) is brought to ``target_dbfs``, never letting the peak
  above ``ceiling_dbfs`` (no clipping: a file with a high crest ends up a little quieter).

Copies live in a cache folder (``DATA/prompt-cache/``) named by a digest of the source's path,
size and modification time and of the settings: a start reads them back, only a new or changed
source file is converted, and each copy is written to a temporary name then renamed (several
worker processes may prepare at once). Nothing is converted during a call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import tempfile
import warnings
import wave
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sipvm.prompts.prompt_set import PromptSet

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # pydub imports audioop (Python 3.11+)
    warnings.simplefilter("ignore", RuntimeWarning)  # pydub's own ffmpeg probe (not needed here)
    from pydub import AudioSegment

PROMPT_CACHE = "prompt-cache"
"""The cache folder, in the data directory (``DATA/prompt-cache/``)."""
SAMPLE_WIDTH = 2
VERSION = 1
"""Part of every cache key: bump it when the preparation itself changes."""


@dataclass(frozen=True)
class PrepareSettings:
    """How prompt sounds are prepared (see the module doc)."""

    pad_ms: int = 50
    threshold_db: float = 40.0
    """A sample is loud when it is at most this many dB below the file's peak."""
    target_dbfs: float = -21.0
    ceiling_dbfs: float = -0.5


DEFAULT = PrepareSettings()


@dataclass(frozen=True)
class PrepareStats:
    files: int
    from_cache: int

    def __str__(self) -> str:
        return f"prompts: {self.files} files prepared ({self.from_cache} from cache)"


def cache_key(source: Path, settings: PrepareSettings = DEFAULT) -> str:
    """The cache file's name for ``source``: its path, size, mtime and the settings."""
    st = source.stat()
    text = f"{source.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{VERSION}\0{settings!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:32] + ".wav"


def loud_bounds(segment: Any, threshold_db: float) -> tuple[int, int] | None:
    """Index of the first and last loud sample (see :class:`PrepareSettings`), or None when
    the file is silent."""
    peak = segment.max
    if peak == 0:
        return None
    limit = peak * 10 ** (-threshold_db / 20)
    samples = segment.get_array_of_samples()
    first = next(i for i, s in enumerate(samples) if abs(s) >= limit)
    last = next(i for i in range(len(samples) - 1, -1, -1) if abs(samples[i]) >= limit)
    return first, last


def prepare_segment(segment: Any, settings: PrepareSettings = DEFAULT) -> Any:
    """Trim and level one sound (8 kHz 16-bit mono)."""
    bounds = loud_bounds(segment, settings.threshold_db)
    if bounds is None:
        return segment
    pad = settings.pad_ms * segment.frame_rate // 1000
    start = max(0, bounds[0] - pad)
    end = min(int(segment.frame_count()), bounds[1] + 1 + pad)
    kept = segment.get_sample_slice(start, end)
    loud = segment.get_sample_slice(bounds[0], bounds[1] + 1)
    if loud.rms == 0:
        return kept
    gain = settings.target_dbfs - loud.dBFS
    headroom = settings.ceiling_dbfs - 20 * math.log10(kept.max / kept.max_possible_amplitude)
    return kept.apply_gain(min(gain, headroom))


def read_segment(path: Path) -> Any:
    with wave.open(str(path), "rb") as w:
        return AudioSegment(
            data=w.readframes(w.getnframes()),
            sample_width=w.getsampwidth(),
            frame_rate=w.getframerate(),
            channels=w.getnchannels(),
        )


def write_atomically(segment: Any, target: Path) -> None:
    """Write a WAV to a temporary name beside ``target``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".prepare-", suffix=".wav")
    try:
        with os.fdopen(fd, "wb") as raw, wave.open(raw, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(SAMPLE_WIDTH)
            w.setframerate(segment.frame_rate)
            w.writeframes(segment.raw_data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare_file(
    source: Path, cache: Path, settings: PrepareSettings = DEFAULT
) -> tuple[Path, bool]:
    """The prepared copy of ``source`` in ``cache`` and whether it was there already."""
    target = cache / cache_key(source, settings)
    if target.is_file():
        return target, True
    write_atomically(prepare_segment(read_segment(source), settings), target)
    return target, False


def prepare_prompts(
    prompts: PromptSet, cache: Path, settings: PrepareSettings = DEFAULT
) -> tuple[PromptSet, PrepareStats]:
    """``prompts`` playing prepared copies of its sounds (made once, kept in ``cache``)."""
    cache.mkdir(parents=True, exist_ok=True)
    done: dict[Path, Path] = {}
    files: dict[str, Path] = {}
    reused = 0
    for name, source in prompts.files.items():
        if source not in done:
            done[source], hit = prepare_file(source, cache, settings)
            reused += hit
        files[name] = done[source]
    stats = PrepareStats(files=len(done), from_cache=reused)
    return dataclasses.replace(prompts, files=MappingProxyType(files)), stats

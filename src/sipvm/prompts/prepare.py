"""Prompt sounds made brisk and even, once: silence trimmed at both ends, loudness levelled.

Asterisk sound files carry 0.1 to 0.3 s of silence at each end, and a sentence strings 5 to 15 of
them; their levels differ by up to 8 dB. :func:`prepare_prompts` gives a :class:`PromptSet`
whose every sound is a prepared copy:

- the silence before the first and after the last loud sample is cut, keeping ``pad_ms`` of
  it at each end, so two words of a sentence are ``2 * pad_ms`` apart (a natural gap) and no
  word's start or end is clipped: a sample is loud when it reaches ``threshold_db`` below the
  file's peak;
- the speech is sped up by ``tempo`` (ffmpeg's ``atempo``: the pitch and the voice are kept,
  only the pace changes; the Asterisk voice reads isolated words slowly, and 1.3 makes a
  sentence of them sound like one spoken at a natural pace), then trimmed again;
- the loudness (RMS of what is kept) is brought to ``target_dbfs``, never letting the peak
  above ``ceiling_dbfs`` (no clipping: a file with a high crest ends up a little quieter).

The tempo change runs once for every file that needs it: one ffmpeg process reads all of them
as one stream (each word separated by silence) and the output is cut back into words in the
middle of each silence, so a start with an empty cache costs one process, not one per file.

Copies live in a cache folder (``DATA/prompt-cache/``) named by a digest of the source's path,
size and modification time and of the settings: a start reads them back, only a new or changed
source file is converted, and each copy is written to a temporary name then renamed (several
worker processes may prepare at once). Nothing is converted during a call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import subprocess
import warnings
import wave
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sipvm.fsutil import replace_file
from sipvm.prompts.prompt_set import PromptSet

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # pydub imports audioop (Python 3.11+)
    warnings.simplefilter("ignore", RuntimeWarning)  # pydub's own ffmpeg probe (not needed here)
    from pydub import AudioSegment

PROMPT_CACHE = "prompt-cache"
"""The cache folder, in the data directory (``DATA/prompt-cache/``)."""
SAMPLE_WIDTH = 2
VERSION = 3
"""Part of every cache key: bump it when the preparation itself changes."""


@dataclass(frozen=True)
class PrepareSettings:
    """How prompt sounds are prepared (see the module doc)."""

    pad_ms: int = 20
    threshold_db: float = 40.0
    """A sample is loud when it is at most this many dB below the file's peak."""
    target_dbfs: float = -21.0
    ceiling_dbfs: float = -0.5
    tempo: float = 1.3
    """Speech pace: 1.0 keeps the recordings' own; ffmpeg's atempo takes 0.5 to 2.0."""
    gap_ms: int = 400
    """Silence between two words in the stream the tempo change reads (cut in its middle)."""
    unpaced: tuple[str, ...] = ("beep",)
    """Sounds that are not speech, kept at their own pace (by file name, without ``.wav``)."""


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


def trim(segment: Any, settings: PrepareSettings = DEFAULT) -> Any:
    """The loud part of a sound with ``pad_ms`` of what surrounds it (a silent sound as is)."""
    bounds = loud_bounds(segment, settings.threshold_db)
    if bounds is None:
        return segment
    pad = settings.pad_ms * segment.frame_rate // 1000
    start = max(0, bounds[0] - pad)
    end = min(int(segment.frame_count()), bounds[1] + 1 + pad)
    return segment.get_sample_slice(start, end)


def level(segment: Any, settings: PrepareSettings = DEFAULT) -> Any:
    """A trimmed sound brought to ``target_dbfs`` (RMS of its loud part), peak under the
    ceiling."""
    bounds = loud_bounds(segment, settings.threshold_db)
    if bounds is None:
        return segment
    loud = segment.get_sample_slice(bounds[0], bounds[1] + 1)
    if loud.rms == 0:
        return segment
    gain = settings.target_dbfs - loud.dBFS
    peak = 20 * math.log10(segment.max / segment.max_possible_amplitude)
    return segment.apply_gain(min(gain, settings.ceiling_dbfs - peak))


def change_tempo(segments: list[Any], settings: PrepareSettings = DEFAULT) -> list[Any]:
    """``segments`` (trimmed, one sample rate, 16-bit mono) at ``tempo``, each trimmed again,
    through one ffmpeg process (see the module doc)."""
    if not segments or settings.tempo == 1.0:
        return list(segments)
    rate = segments[0].frame_rate
    if any(s.frame_rate != rate or s.channels != 1 for s in segments):
        raise ValueError("change_tempo: every sound must be mono at one sample rate")
    gap = b"\0\0" * (settings.gap_ms * rate // 1000)
    bounds: list[tuple[int, int]] = []  # each word's first and last sample in the stream
    stream = bytearray(gap)
    for segment in segments:
        start = len(stream) // 2
        stream += segment.raw_data
        bounds.append((start, len(stream) // 2))
        stream += gap
    fmt = ["-f", "s16le", "-ar", str(rate), "-ac", "1"]
    done = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            *fmt,
            "-i",
            "pipe:0",
            "-af",
            f"atempo={settings.tempo}",
            *fmt,
            "pipe:1",
        ],
        input=bytes(stream),
        capture_output=True,
        check=True,
    )
    out = segments[0]._spawn(done.stdout)
    half_gap = len(gap) // 4
    total = int(out.frame_count())
    result = []
    for start, end in bounds:
        cut_from = max(0, round((start - half_gap) / settings.tempo))
        cut_to = min(total, round((end + half_gap) / settings.tempo))
        result.append(trim(out.get_sample_slice(cut_from, cut_to), settings))
    return result


def prepare_segments(
    segments: list[Any], settings: PrepareSettings = DEFAULT, *, paced: list[bool] | None = None
) -> list[Any]:
    """Trim, pace (those ``paced`` says, default all) and level sounds (see the module doc)."""
    by_rate: dict[tuple[int, int], list[int]] = {}
    trimmed = [trim(s, settings) for s in segments]
    for i, segment in enumerate(trimmed):
        if (paced is not None and not paced[i]) or segment.max == 0:
            continue  # not speech, or silence (a pause keeps its length)
        by_rate.setdefault((segment.frame_rate, segment.channels), []).append(i)
    done = list(trimmed)
    for (_, channels), indexes in by_rate.items():
        if channels != 1:
            continue  # the prompt set plays mono sounds only; left as they are
        for i, segment in zip(
            indexes, change_tempo([trimmed[i] for i in indexes], settings), strict=True
        ):
            done[i] = segment
    return [level(s, settings) for s in done]


def prepare_segment(segment: Any, settings: PrepareSettings = DEFAULT) -> Any:
    """Trim, pace and level one sound."""
    return prepare_segments([segment], settings)[0]


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
    wav = io.BytesIO()
    with wave.open(wav, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(SAMPLE_WIDTH)
        w.setframerate(segment.frame_rate)
        w.writeframes(segment.raw_data)
    replace_file(target, wav.getvalue())


def prepare_file(
    source: Path, cache: Path, settings: PrepareSettings = DEFAULT
) -> tuple[Path, bool]:
    """The prepared copy of ``source`` in ``cache`` and whether it was there already."""
    targets, reused = prepare_files([source], cache, settings)
    return targets[source], reused == 1


def prepare_files(
    sources: list[Path], cache: Path, settings: PrepareSettings = DEFAULT
) -> tuple[dict[Path, Path], int]:
    """The prepared copy of each source (made together when missing) and how many were
    in ``cache`` already."""
    targets = {source: cache / cache_key(source, settings) for source in sources}
    missing = [source for source, target in targets.items() if not target.is_file()]
    if not missing:
        return targets, len(targets)
    prepared = prepare_segments(
        [read_segment(source) for source in missing],
        settings,
        paced=[source.stem not in settings.unpaced for source in missing],
    )
    for source, segment in zip(missing, prepared, strict=True):
        write_atomically(segment, targets[source])
    return targets, len(targets) - len(missing)


def prepare_prompts(
    prompts: PromptSet, cache: Path, settings: PrepareSettings = DEFAULT
) -> tuple[PromptSet, PrepareStats]:
    """``prompts`` playing prepared copies of its sounds (made once, kept in ``cache``)."""
    cache.mkdir(parents=True, exist_ok=True)
    sources = list(dict.fromkeys(prompts.files.values()))
    done, reused = prepare_files(sources, cache, settings)
    files = {name: done[source] for name, source in prompts.files.items()}
    stats = PrepareStats(files=len(done), from_cache=reused)
    return dataclasses.replace(prompts, files=MappingProxyType(files)), stats

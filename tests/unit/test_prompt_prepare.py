"""Prompt sounds prepared once: silence trimmed without clipping a word, loudness even, cached."""

from __future__ import annotations

import math
import os
import wave
from array import array
from pathlib import Path

import pytest

from sipvm.prompts import DEFAULT_SOUNDS_DIR, default_extra_dir, default_manifest, load_prompts
from sipvm.prompts import prepare as prep
from sipvm.prompts.prepare import DEFAULT, loud_bounds, prepare_prompts, read_segment

RATE = 8000


@pytest.fixture(scope="module")
def shipped():  # type: ignore[no-untyped-def]
    return load_prompts(default_manifest(), DEFAULT_SOUNDS_DIR, default_extra_dir())


def write_wav(path: Path, samples: list[int]) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(array("h", samples).tobytes())
    return path


def word(quiet_s: float = 0.3) -> list[int]:
    """Silence, a soft onset rising to a loud vowel, a soft tail, silence."""
    silence = [0] * int(quiet_s * RATE)
    n = int(0.4 * RATE)
    body = [
        round(12000 * math.sin(math.pi * i / n) ** 3 * math.sin(2 * math.pi * 300 * i / RATE))
        for i in range(n)
    ]
    return silence + body + silence


def test_a_trimmed_word_keeps_every_loud_sample_and_the_pad(tmp_path: Path) -> None:
    source = read_segment(write_wav(tmp_path / "w.wav", word()))
    first, last = loud_bounds(source, DEFAULT.threshold_db) or (0, 0)
    prepared = prep.prepare_segment(source)
    pad = DEFAULT.pad_ms * RATE // 1000
    assert int(prepared.frame_count()) == (last - first + 1) + 2 * pad
    gain = prepared.max / source.max
    kept = prepared.get_array_of_samples()
    original = source.get_array_of_samples()
    for i in (first, last, (first + last) // 2):  # the word's first and last loud samples
        assert kept[i - first + pad] == pytest.approx(original[i] * gain, abs=2)
    quiet = prepared.max * 10 ** (-DEFAULT.threshold_db / 20)
    assert all(abs(s) < quiet for s in [*kept[:pad], *kept[-pad:]])  # only silence was cut


def test_every_shipped_sound_keeps_its_words_and_is_evenly_loud(shipped, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prepared, _ = prepare_prompts(shipped, tmp_path)
    pad = DEFAULT.pad_ms * RATE // 1000
    levels = []
    for name, source_path in shipped.files.items():
        source = read_segment(source_path)
        after = read_segment(prepared.files[name])
        first, last = loud_bounds(source, DEFAULT.threshold_db) or (0, 0)
        lead = min(pad, first)
        trail = min(pad, int(source.frame_count()) - 1 - last)
        # every sample from the first to the last loud one survives, with its pad
        assert int(after.frame_count()) == (last - first + 1) + lead + trail, name
        # the same samples, only scaled: nothing shifted, nothing clipped
        gain = after.max / source.max
        start = first - lead
        original = source.get_array_of_samples()
        error = max(
            abs(a - original[start + i] * gain) for i, a in enumerate(after.get_array_of_samples())
        )
        assert error <= 2.0, name
        a_first, a_last = loud_bounds(after, DEFAULT.threshold_db) or (0, 0)
        assert after.max_dBFS <= DEFAULT.ceiling_dbfs + 0.01, name  # never clipped
        levels.append(after.get_sample_slice(a_first, a_last + 1).dBFS)
    assert max(levels) - min(levels) <= 2.0  # within ±1 dB of each other
    assert all(abs(level - DEFAULT.target_dbfs) <= 1.0 for level in levels)


def test_the_cache_is_reused_and_a_changed_source_converted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_wav(tmp_path / "w.wav", word())
    cache = tmp_path / "cache"
    cache.mkdir()
    first, hit = prep.prepare_file(source, cache)
    assert not hit and first.parent == cache
    assert [p.name for p in cache.iterdir()] == [first.name]  # no temporary file left behind

    def no_conversion(*_: object) -> None:
        raise AssertionError("converted again")

    monkeypatch.setattr(prep, "prepare_segment", no_conversion)
    again, hit = prep.prepare_file(source, cache)
    assert (again, hit) == (first, True)
    monkeypatch.undo()
    write_wav(source, word(0.2))
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    changed, hit = prep.prepare_file(source, cache)
    assert not hit and changed != first


def test_prepared_prompts_play_the_same_sounds_in_the_same_order(shipped, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prepared, stats = prepare_prompts(shipped, tmp_path)
    assert stats.files == len(set(shipped.files.values())) and stats.from_cache == 0
    assert str(stats) == f"prompts: {stats.files} files prepared (0 from cache)"
    assert prepared.prompts == shipped.prompts
    assert set(prepared.files) == set(shipped.files)
    assert len(prepared.get("menu.press", key="2")) == len(shipped.get("menu.press", key="2"))
    _, again = prepare_prompts(shipped, tmp_path)
    assert again.from_cache == again.files == stats.files

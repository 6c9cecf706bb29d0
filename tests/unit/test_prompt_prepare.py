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
from sipvm.prompts.prepare import (
    DEFAULT,
    PrepareSettings,
    loud_bounds,
    prepare_prompts,
    prepare_segments,
    read_segment,
)

RATE = 8000
SAME_PACE = PrepareSettings(tempo=1.0)
"""The default preparation without the tempo change: every kept sample can be compared."""


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
    prepared = prep.prepare_segment(source, SAME_PACE)
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
    prepared, _ = prepare_prompts(shipped, tmp_path, SAME_PACE)
    pad = DEFAULT.pad_ms * RATE // 1000
    levels = []
    for name, source_path in shipped.files.items():
        source = read_segment(source_path)
        after = read_segment(prepared.files[name])
        if loud_bounds(source, DEFAULT.threshold_db) is None:  # a pause: kept as it is
            assert after.raw_data == source.raw_data, name
            continue
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

    monkeypatch.setattr(prep, "prepare_segments", no_conversion)
    again, hit = prep.prepare_file(source, cache)
    assert (again, hit) == (first, True)
    monkeypatch.undo()
    write_wav(source, word(0.2))
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    changed, hit = prep.prepare_file(source, cache)
    assert not hit and changed != first


def test_the_beep_keeps_its_pace(shipped, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prepared, _ = prepare_prompts(shipped, tmp_path)
    [beep] = shipped.get("deposit.beep")
    [after] = prepared.get("deposit.beep")
    same = prepare_segments([read_segment(beep)], SAME_PACE)[0]
    assert read_segment(after).frame_count() == same.frame_count()


def test_a_pause_keeps_its_length_among_paced_words(tmp_path: Path) -> None:
    spoken = read_segment(write_wav(tmp_path / "w.wav", word()))
    pause = read_segment(write_wav(tmp_path / "pause.wav", [0] * int(0.3 * RATE)))
    paced_word, paced_pause = prepare_segments([spoken, pause])
    assert paced_pause.frame_count() == 0.3 * RATE and paced_pause.max == 0
    assert paced_word.frame_count() < prepare_segments([spoken], SAME_PACE)[0].frame_count()


def test_prepared_prompts_play_the_same_sounds_in_the_same_order(shipped, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    prepared, stats = prepare_prompts(shipped, tmp_path)
    assert stats.files == len(set(shipped.files.values())) and stats.from_cache == 0
    assert str(stats) == f"prompts: {stats.files} files prepared (0 from cache)"
    assert prepared.prompts == shipped.prompts
    assert set(prepared.files) == set(shipped.files)
    assert len(prepared.get("menu.press", key="2")) == len(shipped.get("menu.press", key="2"))
    _, again = prepare_prompts(shipped, tmp_path)
    assert again.from_cache == again.files == stats.files


def dominant_hz(segment) -> float:  # type: ignore[no-untyped-def]
    import numpy as np

    samples = np.array(segment.get_array_of_samples(), dtype=float)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[int(np.argmax(spectrum))])


def test_the_tempo_shortens_each_word_and_keeps_its_pitch(tmp_path: Path) -> None:
    words = [read_segment(write_wav(tmp_path / f"w{i}.wav", word(0.1 + 0.1 * i))) for i in range(5)]
    paced = prepare_segments(words)
    same = prepare_segments(words, SAME_PACE)
    for before, after in zip(same, paced, strict=True):
        loud = before.frame_count() - 2 * DEFAULT.pad_ms * RATE / 1000
        expected = loud / DEFAULT.tempo + 2 * DEFAULT.pad_ms * RATE / 1000
        assert after.frame_count() == pytest.approx(expected, abs=0.03 * RATE)  # 30 ms
        assert dominant_hz(after) == pytest.approx(300, abs=15)  # the same voice, not higher
        assert after.dBFS == pytest.approx(before.dBFS, abs=1.0)


def test_every_shipped_sound_is_paced_whole(shipped) -> None:  # type: ignore[no-untyped-def]
    """Each sound comes out of the one tempo stream as itself: its length scaled by the tempo,
    none cut in two or merged with its neighbour in the stream."""
    sources = [p for p in dict.fromkeys(shipped.files.values()) if p.stem not in DEFAULT.unpaced]
    segments = [read_segment(p) for p in sources]
    same = prepare_segments(segments, SAME_PACE)
    paced = prepare_segments(segments)
    pad = DEFAULT.pad_ms * RATE / 1000
    for path, before, after in zip(sources, same, paced, strict=True):
        if loud_bounds(before, DEFAULT.threshold_db) is None:
            continue  # silence stays silence
        expected = (before.frame_count() - 2 * pad) / DEFAULT.tempo + 2 * pad
        # within 60 ms and 4 %: a word cut in two or joined to the next would be far off
        tolerance = 0.06 * RATE + 0.04 * expected
        assert after.frame_count() == pytest.approx(expected, abs=tolerance), path.name

"""Benchmark: how long a caller waits in the phone dialogs, measured from what the caller hears.

Prints figures, asserts nothing about speed:

    python tests/bench/bench_dialog_pace.py [--runs 3] [--save FILE] [--compare FILE]

Each run starts a live `sipvm serve` on the example directory (a fresh data directory, so every
run hears the same counts) and places two calls with the scripted pjsua2 peer
(:mod:`tests.support.testpeer`) from the trusted "PBX" address; the peer records what it hears
and reports its loud spans and the time of each step, all from its own clock (0 = answer):

- menu: Carol (1003) calls the pilot; the PIN prompt plays, she types ``315972#`` as soon as it
  starts, hears the main menu to its end (her four inboxes), presses ``3`` (the lobby phone's
  inbox, seeded with one new message: a 3 s tone of 1200 Hz) and listens until the message and
  what follows have played.
- deposit: a caller reaches Bob (1002, no recorded greeting: the system greeting says the
  extension) and waits for the beep (a 700 Hz tone in ``beep.wav``).

Steps (targets in brackets):
- answer → PIN prompt: the first loud span [≤ 1.5 s];
- PIN ``#`` → main menu: from sending ``#`` to the next loud span [≤ 2 s];
- main menu, whole: from its first sound to its last before the caller's key;
- main menu, each inbox line: the main menu cut into its lines at the pauses between them
  (silences of 0.28 s or more; words within a line are 60 to 200 ms apart), the options line left
  out; the figures are over every inbox line of every run [each line ≤ 2.5 s];
- inbox key → message: from sending ``3`` to the onset of the message's tone in the recording
  [≤ 6 s with the envelope before the message, ≤ 3 s after or on a key];
- deposit answer → beep: to the onset of the 700 Hz tone [≤ 8 s].

Tones are found by FFT in 20 ms frames (hop 10 ms): a frame holds the tone when the bins within
25 Hz of it carry 60 % of its energy and it is louder than -45 dBFS; the onset is the first of
10 frames in a row. The recording starts with the media, a few ms away from the answer: it is
aligned on the report's clock by its first loud sample against the first loud span.

Before the prompts were trimmed and the wording shortened (2 cores busy with other tests,
3 runs), p50 / max in seconds:

    answer -> PIN prompt           0.20 / 0.21
    PIN # -> main menu             0.18 / 0.18
    main menu, whole              47.67 / 47.67
    main menu, per inbox line      5.22 / 5.22
    inbox key -> message audio    25.59 / 26.08
    deposit answer -> beep        12.55 / 12.55

``--save FILE`` writes this run's figures as JSON; ``--compare FILE`` prints them beside
figures saved before (without it, beside the figures above).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e.conftest import PBX_HOST, Kit, Server, seed_message, start_server

RATE = 8000
CAROL, CAROL_PIN, CAROL_INBOXES = "1003", "315972", 4
LINE_GAP_S = 0.28
"""A silence this long in the main menu ends a line (the manifest's 0.3-s pause)."""
LOBBY_KEY = "3"
MESSAGE_HZ = 1200.0
BEEP_HZ = 700.0
FRAME = 160  # 20 ms
HOP = 80
TONE_FRAMES = 10
LOUD = 300  # of 32767: what "the first loud sample" means when aligning the recording

STEPS = (
    "answer -> PIN prompt",
    "PIN # -> main menu",
    "main menu, whole",
    "main menu, each inbox line",
    "inbox key -> message audio",
    "deposit answer -> beep",
)
OLD: dict[str, list[float]] = {
    "answer -> PIN prompt": [0.20, 0.21],
    "PIN # -> main menu": [0.18, 0.18],
    "main menu, whole": [47.67, 47.67],
    "main menu, each inbox line": [5.22, 5.22],
    "inbox key -> message audio": [25.59, 26.08],
    "deposit answer -> beep": [12.55, 12.55],
}
"""p50 and max before the prompts were trimmed and the wording shortened (see the module doc)."""


def keys(digits: str) -> dict[str, Any]:
    return {"dtmf": digits, "method": "rfc4733", "duration_ms": 120, "gap_ms": 80}


def read_recording(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (RATE, 2, 1), path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def tone_onsets(pcm: np.ndarray, freq_hz: float) -> list[float]:
    """Seconds (recording clock) where ``freq_hz`` starts to hold for TONE_FRAMES frames."""
    if len(pcm) < FRAME:
        return []
    starts = np.arange(0, len(pcm) - FRAME + 1, HOP)
    frames = np.stack([pcm[s : s + FRAME] for s in starts]) * np.hanning(FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(FRAME, 1 / RATE)
    band = np.abs(freqs - freq_hz) <= 25
    total = power.sum(axis=1)
    rms = np.sqrt((frames**2).mean(axis=1)) / 32768
    loud = 20 * np.log10(np.maximum(rms, 1e-9)) > -45
    held = loud & (power[:, band].sum(axis=1) >= 0.6 * np.maximum(total, 1e-9))
    onsets, run = [], 0
    for i, on in enumerate(held):
        run = run + 1 if on else 0
        if run == TONE_FRAMES:
            onsets.append(float(starts[i - TONE_FRAMES + 1]) / RATE)
    return onsets


def recording_offset(pcm: np.ndarray, spans: list[list[float]]) -> float:
    """Add this to a recording time to get the report's time (0 = answer)."""
    loud = np.flatnonzero(np.abs(pcm) > LOUD)
    if not spans or not len(loud):
        return 0.0
    return float(spans[0][0]) - float(loud[0]) / RATE


def dtmf_sent(step: dict[str, Any], digit_index: int) -> float:
    """When the ``digit_index``-th key of a dtmf step went out (each key takes dur + gap)."""
    each = float(step["step"]["duration_ms"] + step["step"]["gap_ms"]) / 1000
    return float(step["started"]) + digit_index * each


def menu_length(call: dict[str, Any], pin: str, until: float | None = None) -> float:
    """From the main menu's first sound (after the PIN's #) to its last before ``until``."""
    spans: list[list[float]] = call["audio"]
    pound = dtmf_sent(call["steps"][1], len(pin))
    menu = [s for s in spans if s[0] > pound + 0.05 and (until is None or s[0] < until)]
    assert menu, f"no main menu heard: {spans}"
    return float(menu[-1][1] - menu[0][0])


def loud_groups(pcm: np.ndarray, start_s: float, end_s: float) -> list[tuple[float, float]]:
    """Spans (recording seconds) of sound between ``start_s`` and ``end_s``, split at
    silences of ``LINE_GAP_S`` or more."""
    frames = np.arange(int(start_s * RATE), int(end_s * RATE) - FRAME, FRAME)
    loud = [float(np.sqrt((pcm[f : f + FRAME] ** 2).mean())) > LOUD / 3 for f in frames]
    groups: list[tuple[float, float]] = []
    for f, on in zip(frames, loud, strict=True):
        if not on:
            continue
        t = float(f) / RATE
        if groups and t - groups[-1][1] < LINE_GAP_S:
            groups[-1] = (groups[-1][0], t + FRAME / RATE)
        else:
            groups.append((t, t + FRAME / RATE))
    return groups


def menu_script(server: Server) -> dict[str, Any]:
    return {
        "to": f"sip:voicemail@{server.uri_host}",
        "bind": PBX_HOST,
        "from_user": CAROL,
        "headers": [["P-Asserted-Identity", f"<sip:{CAROL}@{PBX_HOST}>"]],
        "steps": [
            {"wait_for_audio": 10},
            keys(CAROL_PIN + "#"),
            {"wait_for_audio": 10},
            {"wait_for_silence": 90, "min_silence": 2.0},  # the whole main menu
            keys(LOBBY_KEY),
            {"wait_for_audio": 10},
            {"wait_for_silence": 90, "min_silence": 2.5},  # intro, envelope, message, options
            {"hangup": True},
        ],
        "timeout": 240,
        "record": "menu.wav",
    }


def deposit_script(server: Server) -> dict[str, Any]:
    return {
        "to": f"sip:1002@{server.uri_host}",
        "bind": PBX_HOST,
        "from_user": "5551234",
        "from_name": "Pat Caller",
        "headers": [],
        "steps": [
            {"wait_for_audio": 10},
            {"wait_for_silence": 60, "min_silence": 1.5},  # greeting, beep, then it records
            {"hangup": True},
        ],
        "timeout": 120,
        "record": "deposit.wav",
    }


def measure_menu(call: dict[str, Any], pcm: np.ndarray) -> tuple[dict[str, float], list[float]]:
    """The menu call's step figures, and the length of each inbox line of its main menu."""
    spans: list[list[float]] = call["audio"]
    steps = call["steps"]
    pin_step, key_step = steps[1], steps[4]
    pound = dtmf_sent(pin_step, len(CAROL_PIN))
    key = dtmf_sent(key_step, 0)
    menu = [s for s in spans if s[0] > pound + 0.05 and s[0] < key]
    assert menu, f"no main menu heard: {spans}"
    offset = recording_offset(pcm, spans)
    tone = [t + offset for t in tone_onsets(pcm, MESSAGE_HZ) if t + offset > key]
    assert tone, "the message's tone was not heard"
    lines = loud_groups(pcm, menu[0][0] - offset - 0.1, menu[-1][1] - offset + 0.1)
    assert len(lines) == CAROL_INBOXES + 1, f"main menu lines: {lines}"  # and the options line
    return {
        "answer -> PIN prompt": spans[0][0],
        "PIN # -> main menu": menu[0][0] - pound,
        "main menu, whole": menu_length(call, CAROL_PIN, key),
        "inbox key -> message audio": tone[0] - key,
    }, [end - start for start, end in lines[:CAROL_INBOXES]]


def measure_deposit(call: dict[str, Any], pcm: np.ndarray) -> dict[str, float]:
    offset = recording_offset(pcm, call["audio"])
    beeps = tone_onsets(pcm, BEEP_HZ)
    assert beeps, "no beep heard"
    return {"deposit answer -> beep": beeps[0] + offset}


def one_run(tmp: Path, envelope: str = "after") -> dict[str, list[float]]:
    """One server, one menu call and one deposit call: step → its figures (one each, or one
    per main-menu line)."""
    server = start_server(tmp, settings=f'[menu]\nenvelope = "{envelope}"\n')
    kit = Kit(tmp, [])
    try:
        seed_message(server, tmp, "1900", MESSAGE_HZ, 3.0)
        report = kit.peer("menu", menu_script(server)).report(300)
        [menu] = report["calls"]
        assert menu["status"] == 200, menu
        steps, lines = measure_menu(menu, read_recording(tmp / "menu.wav"))
        figures = {step: [value] for step, value in steps.items()}
        figures["main menu, each inbox line"] = lines
        report = kit.peer("deposit", deposit_script(server)).report(150)
        [deposit] = report["calls"]
        assert deposit["status"] == 200, deposit
        for step, value in measure_deposit(deposit, read_recording(tmp / "deposit.wav")).items():
            figures[step] = [value]
        return figures
    finally:
        for p in kit.procs:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(5)
        server.stop()


def run(
    runs: int = 3, compare: dict[str, list[float]] | None = None, envelope: str = "after"
) -> tuple[list[str], dict[str, list[float]]]:
    """Measure ``runs`` times; returns the printed lines and the figures (step → [p50, max])."""
    samples: dict[str, list[float]] = {step: [] for step in STEPS}
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix=f"sipvm-pace-{i}-") as tmp:
            for step, values in one_run(Path(tmp), envelope).items():
                samples[step].extend(values)
    figures = {s: [statistics.median(v), max(v)] for s, v in samples.items()}
    old = OLD if compare is None else compare
    lines = [
        f"dialog pace over real SIP, {runs} runs, envelope {envelope} the message "
        "(seconds, from the caller's side)",
        f"{'step':<28} {'p50':>7} {'max':>7}   {'old p50':>7} {'old max':>7}",
    ]
    for step, (p50, top) in figures.items():
        was = old.get(step)
        before = f"{was[0]:7.2f} {was[1]:7.2f}" if was else f"{'-':>7} {'-':>7}"
        lines.append(f"{step:<28} {p50:7.2f} {top:7.2f}   {before}")
    return lines, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--save", type=Path, help="write this run's figures (JSON)")
    parser.add_argument("--compare", type=Path, help="figures saved before with --save")
    parser.add_argument(
        "--envelope", choices=("before", "after", "key"), default="after", help="[menu] envelope"
    )
    args = parser.parse_args(argv)
    compare = json.loads(args.compare.read_text()) if args.compare else None
    lines, figures = run(args.runs, compare, args.envelope)
    print("\n".join(lines))
    if args.save:
        args.save.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

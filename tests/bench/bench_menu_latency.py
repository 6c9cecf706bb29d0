"""Benchmark: DTMF key → first RTP packet of the next prompt, on a live `sipvm serve`.

Prints figures, asserts nothing about speed (target: p99 from key-up under 60 ms):

    python tests/bench/bench_menu_latency.py [--digits 30] [--dialog deposit] [--hold-ms 100]

The caller is :class:`tests.support.rtp_caller.RtpCaller` (pure Python, no pjsua2 in this
process), calling from the trusted "PBX" address 127.0.0.2 to a server on 127.0.0.1, one
call at a time. It sends 20 ms PCMU frames of silence all along and each key as RFC 4733
events (start packet, updates, three end packets with the E bit), and stamps every packet it
sends and receives with ``time.monotonic()``. For each measured key it prints the time from
the first end packet (the figure asked for) and from the start packet, to the first RTP
packet of the prompt that the key brings: p50, p90, p99 and max over all measured keys.

Finding the prompt's first packet. Idle, sipvm sends digital silence (VAD is off). A simple
"first packet louder than a threshold" is late by the prompt's own lead-in: Asterisk sounds
begin with 20-230 ms of near-silence that µ-law encodes as silence (``vm-review`` starts with
11 silent frames), which would put up to 230 ms of recording into a server latency. So the
benchmark recognises the prompt by content: it loads the same prompt files as the server
(``sipvm.prompts``, with the data directory's overrides), encodes every 20 ms frame as
pjmedia does (bit-exact), and looks for the first received packet equal to an audible frame
``k`` of the expected prompt; the prompt's first packet is the one ``k`` sequence numbers
earlier. A miss (no frame of the expected prompt within 5 s) is counted and shown.

Digits pressed while a prompt plays. The content match also handles them (the old prompt's
frames never match the new one, and there need be no silence in between), so both kinds are
measured the same way, and each digit is labelled by what the caller heard in the 100 ms
before its key went down: "idle" (silence: the server waits for input) or "barge-in" (the
server plays a prompt the key interrupts; it must first stop that player). The default
dialog presses only while the server waits in silence, after the previous prompt has played
out plus 0.3-0.5 s, because that is what the target describes; ``deposit-barge-in`` presses
in the middle of a prompt, as an expert caller typing ahead does.

Dialogs are data: a :class:`Dialog` is who to call and a list of steps (wait for audio, wait
until a prompt has played, press a key and time the prompt it brings, ...), an opening and
a cycle repeated until enough keys are measured. Keys are pressed at a random phase against
the server's 20 ms media clock (seeded, so runs are repeatable).

- ``deposit`` (works now): a PBX forwards a call for 2001 (``Diversion: ...;reason=no-answer``);
  the greeting plays, ``#`` skips it (not measured: it interrupts the greeting, and this
  dialog times only keys pressed in silence), the beep, 2.5 s of recorded silence, ``#``
  ends the recording → the review menu (measured); then, each time the review menu has
  played out, ``4`` toggles urgent → "message marked urgent" / "urgent status removed"
  (measured), then the review menu again. Ten keys a call; about 13 s per key, as the
  review menu is 11 s long.
- ``deposit-barge-in``: the same, but ``4`` is pressed 0.4-1.2 s into the review menu.
- ``menu``: the desk-phone menu, not written yet (see :func:`menu_dialog`).

About the two figures: pjmedia reports a key to the application when the event's *first*
packet arrives, not at its end, so the time from the E bit is the time from the start packet
minus how long the key is held (``--hold-ms``), and can be negative.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import wave
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from sipvm.prompts import (  # noqa: E402
    DEFAULT_SOUNDS_DIR,
    PromptSet,
    default_extra_dir,
    default_manifest,
    load_prompts,
)
from sipvm.prompts.prepare import PROMPT_CACHE, prepare_prompts  # noqa: E402
from tests.e2e.conftest import PBX_HOST, Server, start_server  # noqa: E402
from tests.support.rtp_caller import (  # noqa: E402
    FRAME_S,
    FRAME_SAMPLES,
    Heard,
    RtpCaller,
    peak,
    ulaw_encode,
)

AUDIBLE = 64
"""A frame whose largest sample is at least this counts as sound (µ-law noise codes are 8)."""
PROMPT_TIMEOUT_S = 5.0
"""How long after a key the expected prompt may take before the key counts as a miss."""
BARGE_IN_WINDOW_S = 0.1
"""Sound heard this long before a key went down makes the key a barge-in."""
END_WINDOW_FRAMES = 25
"""Frames before a prompt's last audible one that count as its end (see :class:`Played`)."""
TARGET_P99_MS = 60.0


# -- dialogs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Audio:
    """Wait until any sound arrives (a prompt we cannot predict, such as a greeting)."""

    timeout: float = 10.0


@dataclass(frozen=True)
class Played:
    """Wait until ``prompt`` has played to its end, then for quiet.

    "Its end" is any audible frame among the last :data:`END_WINDOW_FRAMES` audible-or-not
    frames before its last audible one: sipvm stops a multi-file prompt (a pjmedia playlist)
    about 250 ms before its end (the playlist reports EOF when it reads its last buffer), so
    the very last frames may never be sent. The quiet lasts ``quiet_s`` plus a random part of
    ``jitter_s`` (so that keys fall at every phase of the server's 20 ms clock); keep it well
    under the menu's input timeout.
    """

    prompt: str
    fill: Mapping[str, object] = field(default_factory=dict)
    quiet_s: float = 0.3
    jitter_s: float = 0.2
    timeout: float = 30.0


@dataclass(frozen=True)
class Playing:
    """Wait until ``prompt`` starts, then ``after_s`` (a random time in that range)."""

    prompt: str
    after_s: tuple[float, float] = (0.4, 1.2)
    fill: Mapping[str, object] = field(default_factory=dict)
    timeout: float = 30.0


@dataclass(frozen=True)
class Quiet:
    """Wait until nothing audible arrived for ``seconds`` (a menu of many sounds ended), plus
    a random part of ``jitter_s``."""

    seconds: float
    jitter_s: float = 0.2


@dataclass(frozen=True)
class Pause:
    """Send silence for ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Press:
    """Press ``key``; with ``expect`` (a prompt id), time it to that prompt's first packet."""

    key: str
    expect: str | None = None
    fill: Mapping[str, object] = field(default_factory=dict)
    """Values for the expected prompt's placeholders (as the flow fills them)."""


Step = Audio | Played | Playing | Quiet | Pause | Press


@dataclass(frozen=True)
class Dialog:
    """Who to call, and the steps of one call: ``opening`` once, then ``cycle`` repeated."""

    name: str
    describe: str
    to: str
    """User part of the Request-URI."""
    headers: tuple[tuple[str, str], ...]
    opening: tuple[Step, ...]
    cycle: tuple[Step, ...]
    keys_per_call: int = 10
    """Measured keys per call; then the caller hangs up and calls again."""


def deposit_dialog(barge_in: bool = False) -> Dialog:
    """Leaving a message for 2001, then toggling urgent in the review menu."""
    before_key: Step = Playing("deposit.review") if barge_in else Played("deposit.review")
    return Dialog(
        name="deposit-barge-in" if barge_in else "deposit",
        describe=(
            "deposit for 2001: # ends the recording -> review menu; 4 -> marked urgent / "
            + ("not urgent, pressed during the review menu" if barge_in else "not urgent")
        ),
        to="voicemail",
        headers=(("Diversion", "<sip:2001@127.0.0.1>;reason=no-answer"),),
        opening=(
            Audio(),  # the greeting
            Press("#"),  # skip it: the beep plays, then the recording starts
            Played("deposit.beep", jitter_s=0.0),
            Pause(2.5),  # longer than min_message_s (2 s), or "too short" plays instead
            Press("#", expect="deposit.review"),
        ),
        cycle=(
            before_key,
            Press("4", expect="deposit.urgent"),
            before_key,
            Press("4", expect="deposit.not_urgent"),
        ),
    )


def menu_dialog(barge_in: bool = False) -> Dialog:
    """The desk-phone menu of Erin (1101, two inboxes): 0 opens the mailbox options, * goes
    back to the main menu, again and again; with ``barge_in`` each key interrupts the prompt.

    The main menu and the options are playlists of several sounds: only the first sound of a
    playlist starts on a frame boundary and can be recognised (see :class:`PromptFrames`), so
    the idle variant waits for the quiet after a menu rather than for its last sound.
    """

    def before(first_sound: str, **fill: object) -> Step:
        return Playing(first_sound, fill=fill) if barge_in else Quiet(0.9)

    return Dialog(
        name="menu-barge-in" if barge_in else "menu",
        describe=(
            "desk-phone menu of 1101: 0 -> mailbox options; * -> main menu"
            + (", pressed while the menus play" if barge_in else "")
        ),
        to="voicemail",
        headers=(("P-Asserted-Identity", "<sip:1101@127.0.0.2>"),),
        opening=(
            Played("login.password"),
            *[Press(d) for d in "927361"],  # collect waits silently between keys
            Press("#", expect="menu.inbox", fill={"ext": "1101"}),  # the main menu's first line
            before("menu.inbox", ext="1101"),
            Press("0", expect="menu.greeting_options"),
            before("menu.greeting_options"),
        ),
        cycle=(
            Press("*", expect="menu.inbox", fill={"ext": "1101"}),
            before("menu.inbox", ext="1101"),
            Press("0", expect="menu.greeting_options"),
            before("menu.greeting_options"),
        ),
    )


DIALOGS: dict[str, Callable[[], Dialog]] = {
    "deposit": deposit_dialog,
    "deposit-barge-in": lambda: deposit_dialog(barge_in=True),
    "menu": menu_dialog,
    "menu-barge-in": lambda: menu_dialog(barge_in=True),
}


# -- recognising prompts on the wire ----------------------------------------------------------


class PromptFrames:
    """The PCMU frames of prompts as the server sends them, to recognise them when heard."""

    def __init__(self, prompts: PromptSet) -> None:
        self._prompts = prompts
        self._cache: dict[tuple[str, tuple[tuple[str, object], ...]], list[bytes]] = {}

    def frames(self, prompt: str, fill: Mapping[str, object]) -> list[bytes]:
        """Every 20 ms frame of ``prompt`` (its files played back to back, as a playlist)."""
        key = (prompt, tuple(sorted(fill.items())))
        if key not in self._cache:
            samples = array("h")
            for path in self._prompts.get(prompt, **fill):
                with wave.open(str(path)) as w:
                    samples.frombytes(w.readframes(w.getnframes()))
            if sys.byteorder == "big":
                samples.byteswap()
            samples.extend([0] * (-len(samples) % FRAME_SAMPLES))
            self._cache[key] = [
                ulaw_encode(samples[i : i + FRAME_SAMPLES])
                for i in range(0, len(samples), FRAME_SAMPLES)
            ]
        return self._cache[key]

    def audible(self, prompt: str, fill: Mapping[str, object]) -> dict[bytes, int]:
        """Audible frame → its index in the prompt (the first index, if one repeats)."""
        out: dict[bytes, int] = {}
        for k, frame in enumerate(self.frames(prompt, fill)):
            if peak(frame) >= AUDIBLE:
                out.setdefault(frame, k)
        return out

    def ending(self, prompt: str, fill: Mapping[str, object]) -> set[bytes]:
        """The audible frames among the last :data:`END_WINDOW_FRAMES` up to the last audible."""
        frames = self.frames(prompt, fill)
        last = max(k for k, f in enumerate(frames) if peak(f) >= AUDIBLE)
        tail = frames[max(0, last - END_WINDOW_FRAMES) : last + 1]
        return {f for f in tail if peak(f) >= AUDIBLE}


# -- running a dialog -------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One measured key."""

    key: str
    prompt: str
    barge_in: bool
    from_up_ms: float | None
    """Key-up (first E-bit packet) → the prompt's first packet; None: the prompt never came."""
    from_down_ms: float | None
    """Key-down (start packet) → the prompt's first packet."""


def _audible(p: Heard) -> bool:
    return peak(p.payload) >= AUDIBLE


class CallRun:
    """Plays a dialog's steps on one call and collects the measured keys."""

    def __init__(
        self, caller: RtpCaller, frames: PromptFrames, hold_ms: int, rng: random.Random
    ) -> None:
        self.caller = caller
        self.frames = frames
        self.hold_ms = hold_ms
        self.rng = rng
        self.cursor = 0
        """Index in ``caller.heard`` from which the next step looks."""
        self.samples: list[Sample] = []

    def step(self, step: Step) -> None:
        """Run one step (blocking)."""
        caller = self.caller
        if isinstance(step, Audio):
            self.cursor = caller.wait_heard(_audible, start=self.cursor, timeout=step.timeout)
        elif isinstance(step, Played):
            ending = self.frames.ending(step.prompt, step.fill)
            end = caller.wait_heard(
                lambda p: p.payload in ending, start=self.cursor, timeout=step.timeout
            )
            self.cursor = self._quiet(end + 1, step.quiet_s)
            time.sleep(self.rng.uniform(0, step.jitter_s))
        elif isinstance(step, Playing):
            audible = self.frames.audible(step.prompt, step.fill)
            self.cursor = caller.wait_heard(
                lambda p: p.payload in audible, start=self.cursor, timeout=step.timeout
            )
            time.sleep(self.rng.uniform(*step.after_s))
        elif isinstance(step, Quiet):
            self.cursor = self._quiet(self.cursor, step.seconds)
            time.sleep(self.rng.uniform(0, step.jitter_s))
        elif isinstance(step, Pause):
            time.sleep(step.seconds)
        else:
            self._press(step)

    def _quiet(self, start: int, quiet_s: float) -> int:
        """Wait until nothing audible arrived for ``quiet_s``; returns the next index to read."""
        while True:
            try:
                start = self.caller.wait_heard(_audible, start=start, timeout=quiet_s) + 1
            except TimeoutError:
                return len(self.caller.heard)

    def _press(self, step: Press) -> None:
        first = len(self.caller.heard)
        digit = self.caller.press(step.key, self.hold_ms)
        if step.expect is None:
            self.cursor = len(self.caller.heard)
            return
        before = [p for p in self.caller.heard[max(0, first - 10) :] if p.at <= digit.down_at]
        barge_in = any(_audible(p) for p in before if p.at >= digit.down_at - BARGE_IN_WINDOW_S)
        audible = self.frames.audible(step.expect, step.fill)
        try:
            hit = self.caller.wait_heard(
                lambda p: p.at > digit.down_at and p.payload in audible,
                start=first,
                timeout=PROMPT_TIMEOUT_S,
            )
        except TimeoutError:
            self.samples.append(Sample(step.key, step.expect, barge_in, None, None))
            self.cursor = len(self.caller.heard)
            return
        heard = self.caller.heard
        start_at, self.cursor = _prompt_start(heard, hit, audible[heard[hit].payload])
        self.samples.append(
            Sample(
                step.key,
                step.expect,
                barge_in,
                (start_at - digit.up_at) * 1000,
                (start_at - digit.down_at) * 1000,
            )
        )


def _prompt_start(heard: Sequence[Heard], hit: int, frame: int) -> tuple[float, int]:
    """Arrival time and index of the packet ``frame`` sequence numbers before ``heard[hit]``.

    If that packet was lost, its time is estimated from the hit's at 20 ms per frame.
    """
    want = (heard[hit].seq - frame) & 0xFFFF
    for i in range(hit, max(-1, hit - frame - 50), -1):
        if heard[i].seq == want:
            return heard[i].at, i
    return heard[hit].at - frame * FRAME_S, hit


def measure(
    server: Server, dialog: Dialog, keys: int, *, hold_ms: int, seed: int = 1
) -> tuple[list[Sample], int]:
    """Call ``server`` until ``keys`` keys are measured; returns them and the calls made."""
    prompts = load_prompts(
        default_manifest(),
        DEFAULT_SOUNDS_DIR,
        default_extra_dir(),
        overrides_dir=server.data / "prompts",
    )
    # the server plays the prepared copies (made at its start): match those
    prompts, _ = prepare_prompts(prompts, server.data / PROMPT_CACHE)
    frames = PromptFrames(prompts)
    rng = random.Random(seed)
    samples: list[Sample] = []
    calls = 0
    while len(samples) < keys:
        calls += 1
        with RtpCaller(("127.0.0.1", server.sip_port), bind=PBX_HOST) as caller:
            status = caller.invite(dialog.to, headers=dialog.headers)
            if status != 200:
                raise RuntimeError(f"call {calls} to {dialog.to!r} answered {status}")
            run = CallRun(caller, frames, hold_ms, rng)
            want = min(dialog.keys_per_call, keys - len(samples))
            for step in dialog.opening:
                run.step(step)
            while len(run.samples) < want:
                for step in dialog.cycle:
                    if len(run.samples) >= want:
                        break
                    run.step(step)
            samples += run.samples[:want]
            caller.hangup()
    return samples, calls


# -- report -----------------------------------------------------------------------------------


def _quantiles(values: list[float]) -> tuple[float, float, float, float]:
    """(p50, p90, p99, max); with one value, all four are that value."""
    if len(values) == 1:
        return (values[0],) * 4
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[89], q[98], max(values)


def report(
    samples: list[Sample], dialog: Dialog, calls: int, hold_ms: int, wall_s: float
) -> list[str]:
    """The table printed at the end."""
    timed = [s for s in samples if s.from_up_ms is not None]
    lines = [
        f'DTMF -> next prompt, dialog "{dialog.name}": {dialog.describe}',
        f"  {len(samples)} digits measured in {calls} calls (one at a time), keys held "
        f"{hold_ms} ms, {wall_s:.0f} s",
        f"  {'ms':<46}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'n':>5}",
    ]

    def row(label: str, values: list[float]) -> None:
        if values:
            cells = "".join(f"{v:8.1f}" for v in _quantiles(values))
            lines.append(f"  {label:<46}{cells}{len(values):5d}")

    ups = [s.from_up_ms for s in timed if s.from_up_ms is not None]
    downs = [s.from_down_ms for s in timed if s.from_down_ms is not None]
    row("from key-up (E bit) [target]", ups)
    row("from key-down (start packet)", downs)
    groups: dict[tuple[str, str, bool], list[float]] = {}
    for s in timed:
        if s.from_down_ms is not None:
            groups.setdefault((s.key, s.prompt, s.barge_in), []).append(s.from_down_ms)
    for (key, prompt, barge_in), values in sorted(groups.items()):
        row(f"  {key} -> {prompt} ({'barge-in' if barge_in else 'idle'}), key-down", values)
    missed = len(samples) - len(timed)
    verdict = "n/a"
    if ups:
        p99 = _quantiles(ups)[2]
        verdict = f"{'met' if p99 < TARGET_P99_MS else 'NOT met'} (p99 {p99:.1f} ms)"
    lines.append(f"  target p99 from key-up < {TARGET_P99_MS:.0f} ms: {verdict}")
    lines.append(f"  prompt not heard within {PROMPT_TIMEOUT_S:.0f} s of the key: {missed}")
    return lines


def run(digits: int, dialog_name: str = "deposit", hold_ms: int = 100, seed: int = 1) -> list[str]:
    """Start a server, measure ``digits`` keys of the dialog, return the report lines."""
    dialog = DIALOGS[dialog_name]()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # Inboxes announced by "Inbox 1 1 0 1" (prompt files the frames are matched against),
        # not by a spoken name: what is said does not change how soon it starts.
        server = start_server(tmp, settings="[menu]\nspoken_names = false\n")
        try:
            started = time.monotonic()
            try:
                samples, calls = measure(server, dialog, digits, hold_ms=hold_ms, seed=seed)
            except (TimeoutError, RuntimeError) as exc:
                raise RuntimeError(f"{exc}; server log:\n" + "\n".join(server.log[-20:])) from exc
            return report(samples, dialog, calls, hold_ms, time.monotonic() - started)
        finally:
            server.stop(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--digits", type=int, default=30, help="keys to measure (default 30)")
    parser.add_argument("--dialog", choices=sorted(DIALOGS), default="deposit")
    parser.add_argument(
        "--hold-ms", type=int, default=100, help="how long each key is held (multiple of 20)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random key timing")
    args = parser.parse_args(argv)
    if args.digits < 1:
        parser.error("--digits must be at least 1")
    if args.hold_ms < 20 or args.hold_ms % 20:
        parser.error("--hold-ms must be a multiple of 20 ms (RTP frames), at least 20")
    for line in run(args.digits, args.dialog, args.hold_ms, args.seed):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

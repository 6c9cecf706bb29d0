"""Inbox names spoken by espeak-ng, for inboxes with no recorded name.

A desk-phone menu line names each inbox: its recorded name, else its extension spelled out
("Inbox 2 0 0 1", about 3 s). :class:`SpokenNames` makes a sound of each directory name
("Support", under a second) ahead of the calls: ``make`` speaks every name not made yet with
espeak-ng, converts it to the prompts' format (8 kHz, 16-bit, mono) and prepares it like every
prompt (:func:`sipvm.prompts.prepare.prepare_segments`: trimmed, paced, levelled); ``path_for``
is a lookup in the cache folder only, so nothing is spoken during a call.

The files live in ``DATA/prompt-cache/names/``, named by a digest of the text, the voice, the
speed and the preparation's settings: a changed name gets a new file, an unchanged one is made
once. Each is written to a temporary name then renamed (several worker processes may make the
same names at once).

Names come from the directory (an admin's input): each is passed to espeak-ng as one argument
after ``--`` (so a name starting with "-" is text, never an option), with no shell, control
characters removed and at most :data:`MAX_CHARS` characters.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tempfile
import threading
import unicodedata
import wave
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from sipvm.prompts import prepare

log = logging.getLogger(__name__)

NAMES_DIR: Final = "names"
"""The folder of spoken names in the prompt cache (``DATA/prompt-cache/names/``)."""
MAX_CHARS: Final = 60
"""Longer names are cut to this many characters before they are spoken."""
RATE: Final = 8000
ESPEAK: Final = "espeak-ng"
SPEAK_TIMEOUT_S: Final = 20.0


def clean_name(text: str) -> str:
    """``text`` as it is spoken: control characters gone, runs of spaces made one, at most
    :data:`MAX_CHARS` characters ("" when nothing is left)."""
    kept = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    return " ".join(kept.split())[:MAX_CHARS].strip()


class SpokenNames:
    """Directory names as prepared sounds (see the module doc)."""

    def __init__(
        self,
        cache_dir: Path,
        voice: str = "en-us+f3",
        speed: int = 160,
        *,
        settings: prepare.PrepareSettings = prepare.DEFAULT,
    ) -> None:
        self.cache_dir = cache_dir
        self.voice = voice
        self.speed = speed
        self.settings = settings

    @property
    def available(self) -> bool:
        """Whether the ``espeak-ng`` command is installed."""
        return shutil.which(ESPEAK) is not None

    def path_for(self, text: str) -> Path | None:
        """The prepared sound of ``text`` if it was made, else None (never speaks it)."""
        name = clean_name(text)
        if not name:
            return None
        path = self._target(name)
        return path if path.is_file() else None

    def make(self, texts: Iterable[str], *, stop: threading.Event | None = None) -> tuple[int, int]:
        """Speak and prepare every name of ``texts`` not made yet (blocking: run it in a
        thread); returns how many of the names are ready and how many were made now.

        A name espeak-ng fails on is logged and skipped; ``stop`` set ends the round early
        (the names spoken so far are still kept). Without espeak-ng nothing is made: (0, 0).
        """
        if not self.available:
            return 0, 0
        names = list(dict.fromkeys(filter(None, map(clean_name, texts))))
        missing = [name for name in names if not self._target(name).is_file()]
        if not missing:
            return len(names), 0
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        spoken: list[tuple[str, Any]] = []
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".speak-") as tmp:
            for i, name in enumerate(missing):
                if stop is not None and stop.is_set():
                    break
                segment = self._speak(name, Path(tmp) / f"{i}.wav")
                if segment is not None:
                    spoken.append((name, segment))
        if spoken:
            prepared = prepare.prepare_segments([segment for _, segment in spoken], self.settings)
            for (name, _), segment in zip(spoken, prepared, strict=True):
                prepare.write_atomically(segment, self._target(name))
        return len(names) - len(missing) + len(spoken), len(spoken)

    def _speak(self, name: str, raw: Path) -> Any | None:
        """``name`` spoken, 8 kHz 16-bit mono, or None (logged) when espeak-ng fails."""
        command = [ESPEAK, "-v", self.voice, "-s", str(self.speed), "-w", str(raw), "--", name]
        try:
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                timeout=SPEAK_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
            )
            segment = prepare.read_segment(raw)
        except subprocess.CalledProcessError as exc:
            err = exc.stderr.decode(errors="replace").strip()
            log.warning("spoken name %r: espeak-ng failed (exit %d): %s", name, exc.returncode, err)
            return None
        except (OSError, subprocess.TimeoutExpired, EOFError, wave.Error) as exc:
            log.warning("spoken name %r: espeak-ng failed: %s", name, exc)
            return None
        return segment.set_frame_rate(RATE).set_channels(1).set_sample_width(prepare.SAMPLE_WIDTH)

    def _target(self, name: str) -> Path:
        key = "\0".join(
            (name, self.voice, str(self.speed), str(prepare.VERSION), repr(self.settings))
        )
        return self.cache_dir / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".wav")

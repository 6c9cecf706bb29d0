#!/usr/bin/env python3
"""Make the phrases the Asterisk core sounds lack: ``extra.toml`` → ``extra/<lang>/<name>.wav``.

Each phrase is spoken by espeak-ng and converted by sox to the format of the Asterisk sounds
(8 kHz, 16-bit, mono PCM WAV), because a pjmedia playlist plays one format only. The output is
reproducible (no dither), so regenerating unchanged phrases changes no file.

    python prompts/generate_extra.py                # every language in extra.toml
    python prompts/generate_extra.py --lang en      # one language
    python prompts/generate_extra.py --prune        # also delete WAVs no longer in the table

Needs the ``espeak-ng`` and ``sox`` commands (Debian: ``apt-get install espeak-ng sox``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import wave
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME_PATTERN = re.compile(r"sipvm-[a-z0-9-]+")


@dataclass(frozen=True)
class Voice:
    """One language's table: the espeak-ng voice, its speed and the phrases to speak."""

    voice: str
    speed: int
    phrases: dict[str, str]
    silences: dict[str, int]
    """Name → milliseconds of silence (pauses the manifest puts between sentences)."""


def load_table(path: Path) -> dict[str, Voice]:
    """Language → its voice and phrases, checked."""
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    table: dict[str, Voice] = {}
    for lang, entry in doc.items():
        voice, speed, phrases = entry.get("voice"), entry.get("speed"), entry.get("phrases")
        if not (isinstance(voice, str) and isinstance(speed, int) and isinstance(phrases, dict)):
            raise SystemExit(f"{path}: [{lang}] needs voice (string), speed (integer), [phrases]")
        for name, text in phrases.items():
            if not NAME_PATTERN.fullmatch(name) or not isinstance(text, str) or not text.strip():
                raise SystemExit(
                    f"{path}: [{lang}.phrases] {name!r}: names are 'sipvm-' then lowercase "
                    "letters, digits and dashes; the text must be a non-empty string"
                )
        silences = entry.get("silences", {})
        for name, ms in silences.items():
            if not NAME_PATTERN.fullmatch(name) or not isinstance(ms, int) or not 0 < ms <= 5000:
                raise SystemExit(
                    f"{path}: [{lang}.silences] {name!r}: names are 'sipvm-' then lowercase "
                    "letters, digits and dashes; the value is milliseconds, 1 to 5000"
                )
        table[lang] = Voice(voice, speed, dict(phrases), dict(silences))
    return table


def write_silence(ms: int, out: Path) -> None:
    """``ms`` of digital silence as 8 kHz 16-bit mono PCM WAV (replaced atomically)."""
    tmp = out.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * (8 * ms))
    tmp.replace(out)


def synthesize(text: str, voice: Voice, out: Path) -> None:
    """Speak ``text`` into ``out`` as 8 kHz 16-bit mono PCM WAV (replaced atomically)."""
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        raw = Path(tmp) / "raw.wav"
        converted = Path(tmp) / "out.wav"
        speak = ["espeak-ng", "-v", voice.voice, "-s", str(voice.speed), "-w", str(raw), text]
        subprocess.run(speak, check=True)
        # -D: no dither, so the output is reproducible; gain -n -3: peak at -3 dBFS, about the
        # level of the Asterisk recordings.
        convert = ["sox", "-D", str(raw), "-r", "8000", "-c", "1", "-b", "16"]
        convert += ["-e", "signed-integer", str(converted), "gain", "-n", "-3"]
        subprocess.run(convert, check=True)
        converted.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--table", type=Path, default=HERE / "extra.toml")
    parser.add_argument("--out", type=Path, default=HERE / "extra", help="writes OUT/<lang>/")
    parser.add_argument("--lang", action="append", help="only this language (repeatable)")
    parser.add_argument("--prune", action="store_true", help="delete WAVs not in the table")
    args = parser.parse_args(argv)
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            print(f"error: the {tool} command is missing (apt-get install {tool})", file=sys.stderr)
            return 1
    table = load_table(args.table)
    for lang in args.lang or sorted(table):
        if lang not in table:
            print(f"error: no [{lang}] table in {args.table}", file=sys.stderr)
            return 2
        voice = table[lang]
        folder = args.out / lang
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in sorted(voice.phrases.items()):
            synthesize(" ".join(text.split()), voice, folder / f"{name}.wav")
            print(f"{folder / name}.wav  {text!r}")
        for name, ms in sorted(voice.silences.items()):
            write_silence(ms, folder / f"{name}.wav")
            print(f"{folder / name}.wav  {ms} ms of silence")
        known = voice.phrases.keys() | voice.silences.keys()
        for stale in sorted(p for p in folder.glob("*.wav") if p.stem not in known):
            if args.prune:
                stale.unlink()
                print(f"deleted {stale} (not in {args.table.name})")
            else:
                print(f"note: {stale} is not in {args.table.name} (--prune deletes it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

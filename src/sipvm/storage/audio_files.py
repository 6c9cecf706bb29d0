"""Audio files under the data directory, written so that a crash never loses a recording.

Layout (all under ``--data``):
- ``spool/<uid>.wav`` + ``spool/<uid>.json``: a recording in progress and what is known about it
  (inbox, caller, time). The JSON sidecar is written first, so startup recovery can adopt a
  recording interrupted by a crash.
- ``audio/<inbox>/<uid>.wav``: durable message audio (fsynced, atomically renamed into place,
  directory fsynced) — written before the message row is committed.
- ``quarantine/``: files recovery could not adopt, kept for an admin to inspect.

With a worker pool each media worker has its own spool and scratch area (``spool/<worker>/``,
``tmp/<worker>/``), so a worker that restarts recovers only its own interrupted recordings,
never one another worker is still writing.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from sipvm.fsutil import fsync_dir


def new_uid() -> str:
    """A fresh message uid: also the audio file's name."""
    return uuid.uuid4().hex


class AudioFiles:
    """The data directory's audio areas. Methods block: call them through ``asyncio.to_thread``."""

    def __init__(self, data_dir: Path, worker: str = "") -> None:
        self.data_dir = data_dir
        self.spool = data_dir / "spool" / worker if worker else data_dir / "spool"
        self.audio = data_dir / "audio"
        self.quarantine = data_dir / "quarantine"
        self.scratch = data_dir / "tmp" / worker if worker else data_dir / "tmp"
        for d in (self.spool, self.audio, self.quarantine):
            d.mkdir(parents=True, exist_ok=True)

    def spool_wav(self, uid: str) -> Path:
        """Where a recording in progress is written."""
        return self.spool / f"{uid}.wav"

    def sidecar(self, uid: str) -> Path:
        """The JSON facts about a recording in progress."""
        return self.spool / f"{uid}.json"

    def scratch_file(self, suffix: str = ".wav") -> Path:
        """A fresh path for a short-lived file (a greeting or comment being recorded);
        the caller deletes it, and ``clear_scratch`` at startup removes what a crash left."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        return self.scratch / f"{new_uid()}{suffix}"

    def clear_scratch(self) -> int:
        """Delete every short-lived file; returns how many there were."""
        if not self.scratch.is_dir():
            return 0
        found = [p for p in self.scratch.iterdir() if p.is_file()]
        for p in found:
            p.unlink(missing_ok=True)
        return len(found)

    def final_relpath(self, inbox: str, uid: str) -> str:
        """The durable file's path relative to the data directory."""
        return f"audio/{inbox}/{uid}.wav"

    def path(self, relpath: str) -> Path:
        """Absolute path of a stored file (refusing paths that leave the data directory)."""
        target = (self.data_dir / relpath).resolve()
        if not target.is_relative_to(self.data_dir.resolve()):
            raise ValueError(f"audio path {relpath!r} leaves the data directory")
        return target

    def write_sidecar(self, uid: str, facts: dict[str, Any]) -> None:
        """Durably record what is known about a recording before audio arrives."""
        _write_durably(self.sidecar(uid), json.dumps(facts, sort_keys=True).encode())

    def read_sidecar(self, uid: str) -> dict[str, Any]:
        """The facts written by ``write_sidecar``."""
        data: dict[str, Any] = json.loads(self.sidecar(uid).read_text(encoding="utf-8"))
        return data

    def commit(self, src: Path, inbox: str, uid: str, *, keep_source: bool = False) -> str:
        """Make ``src`` the durable audio of message ``uid`` in ``inbox``; returns its relpath.

        The file is fsynced, renamed (or, with ``keep_source``, copied) into place and both
        directories fsynced: after this returns, a power cut cannot lose it.
        """
        rel = self.final_relpath(inbox, uid)
        dst = self.path(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if keep_source:
            tmp = dst.with_suffix(".part")
            shutil.copyfile(src, tmp)
            _fsync_file(tmp)
            os.replace(tmp, dst)
        else:
            _fsync_file(src)
            os.replace(src, dst)
            fsync_dir(src.parent)
        fsync_dir(dst.parent)
        return rel

    def link_copy(self, relpath: str, inbox: str, uid: str) -> str:
        """A second durable name for stored audio (a shared copy): hard link, else a copy."""
        src = self.path(relpath)
        rel = self.final_relpath(inbox, uid)
        dst = self.path(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            return self.commit(src, inbox, uid, keep_source=True)
        fsync_dir(dst.parent)
        return rel

    def remove(self, relpath: str) -> None:
        """Delete a stored file (missing is fine: purge may run twice after a crash)."""
        self.path(relpath).unlink(missing_ok=True)

    def discard_spool(self, uid: str) -> None:
        """Drop a recording in progress and its sidecar."""
        self.spool_wav(uid).unlink(missing_ok=True)
        self.sidecar(uid).unlink(missing_ok=True)

    def to_quarantine(self, path: Path) -> Path:
        """Move a file aside for an admin to look at; returns where it went."""
        dst = self.quarantine / path.name
        n = 1
        while dst.exists():
            dst = self.quarantine / f"{path.stem}.{n}{path.suffix}"
            n += 1
        os.replace(path, dst)
        fsync_dir(self.quarantine)
        return dst


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())

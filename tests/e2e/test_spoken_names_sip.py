"""Inboxes without a recorded name get a spoken one, made at the server's start and kept."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from .conftest import start_server

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)"
)


def test_names_are_spoken_at_start_and_kept_for_the_next(tmp_path: Path) -> None:
    first = start_server(tmp_path, shared_prompts=False)
    try:
        line = first.wait_log("spoken names: ")
    finally:
        assert first.stop() == 0
    match = re.search(r"spoken names: (\d+) ready \((\d+) made\)", line)
    assert match and match.group(1) == match.group(2), line
    folder = tmp_path / "data" / "prompt-cache" / "names"
    assert len(list(folder.glob("*.wav"))) == int(match.group(1)) > 5
    again = start_server(tmp_path, shared_prompts=False)
    try:
        again.wait_log("sipvm ready")
        assert not [entry for entry in again.log if "spoken names: " in entry]  # none made
    finally:
        assert again.stop() == 0


def test_spoken_names_can_be_turned_off(tmp_path: Path) -> None:
    running = start_server(
        tmp_path, settings="[menu]\nspoken_names = false\n", shared_prompts=False
    )
    try:
        running.wait_log("sipvm ready")
    finally:
        assert running.stop() == 0
    assert not (tmp_path / "data" / "prompt-cache" / "names").exists()

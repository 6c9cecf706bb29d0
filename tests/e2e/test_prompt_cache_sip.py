"""Prompt sounds are prepared once, at the server's start, and kept for the next start."""

from __future__ import annotations

import re
from pathlib import Path

from .conftest import start_server


def test_prompts_are_prepared_at_start_and_read_back_from_the_cache(tmp_path: Path) -> None:
    first = start_server(tmp_path, shared_prompts=False)
    try:
        line = first.wait_log("prompts: ")
    finally:
        assert first.stop() == 0
    match = re.search(r"prompts: (\d+) files prepared \(0 from cache\)", line)
    assert match, line
    count = int(match.group(1))
    cache = tmp_path / "data" / "prompt-cache"
    assert len(list(cache.glob("*.wav"))) == count > 100
    again = start_server(tmp_path, shared_prompts=False)
    try:
        assert f"prompts: {count} files prepared ({count} from cache)" in again.wait_log(
            "prompts: "
        )
    finally:
        assert again.stop() == 0

"""The `sipvm` command as an admin runs it: real processes, real store, exit codes, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sipvm.app import App
from tests.support.tones import read_pcm_mono, seconds_with_tone

from .conftest import Deposit

REPO = Path(__file__).resolve().parents[2]


def sipvm(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sipvm", *args, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_apply_twice_export_and_reapply(tmp_path: Path, example_directory_file: Path) -> None:
    data = tmp_path / "data"
    first = sipvm(data, "directory", "apply", str(example_directory_file))
    assert first.returncode == 0, first.stderr
    assert "11 extensions (revision 1)" in first.stdout
    again = sipvm(data, "directory", "apply", str(example_directory_file))
    assert again.returncode == 0 and "no change" in again.stdout
    exported = tmp_path / "export.toml"
    assert sipvm(data, "directory", "export", "-o", str(exported)).returncode == 0
    # Private by default: the data directory, the store and the export (PIN hashes inside).
    for made in (data, *data.iterdir(), exported):
        assert made.stat().st_mode & 0o077 == 0, f"{made}: {made.stat().st_mode & 0o777:o}"
    text = exported.read_text()
    assert "pin_hash" in text and "482916" not in text
    # the export is equivalent: applying it changes nothing
    back = sipvm(data, "directory", "apply", str(exported))
    assert back.returncode == 0 and "no change" in back.stdout, back.stdout + back.stderr


def test_invalid_directory_reports_every_problem_and_applies_nothing(
    tmp_path: Path, example_directory_file: Path
) -> None:
    data = tmp_path / "data"
    assert sipvm(data, "directory", "apply", str(example_directory_file)).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(
        example_directory_file.read_text()
        .replace('name = "Dan Brown"', 'name = "Dan Brown"\nfavourite = "blue"')
        .replace('member = "1900"\nrights = ["play"]', 'member = "7777"\nrights = ["play"]')
        .replace('timezone = "Europe/London"', 'timezone = "Mars/Olympus"')
    )
    result = sipvm(data, "directory", "apply", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "sipvm: 3 problems in the directory:"
    assert any("user 1004: unknown key 'favourite'" in x for x in lines)
    assert any("call_queue 2001 members #3: member 7777 is not a user" in x for x in lines)
    assert any("site 'Branch': 'timezone' is not a known time zone" in x for x in lines)
    assert all(str(bad) in x for x in lines[1:])
    # nothing was applied: Dan and the queue's list are as before
    listing = sipvm(data, "inboxes", "--member", "1900", "--json")
    assert [i["ext"] for i in json.loads(listing.stdout)] == ["1900", "2001"]


async def test_listings_and_actions(app: App, deposit: Deposit, tmp_path: Path) -> None:
    data = app.data_dir
    m1 = await deposit("2001", freq=1200.0, seconds=3.0, caller="5550001")
    m2 = await deposit("2001", seconds=2.5, caller="5550002")

    inboxes = sipvm(data, "inboxes", "--member", "1004", "--json")
    assert inboxes.returncode == 0, inboxes.stderr
    found = json.loads(inboxes.stdout)  # stdout is JSON and nothing else
    assert found == [
        {
            "ext": "1004",
            "kind": "user",
            "name": "Dan Brown",
            "rights": ["play", "share"],
            "new": 0,
            "old": 0,
            "urgent_new": 0,
            "urgent_old": 0,
            "own": True,
        },
        {
            "ext": "2001",
            "kind": "call_queue",
            "name": "Sales",
            "rights": ["play", "share"],
            "new": 2,
            "old": 0,
            "urgent_new": 0,
            "urgent_old": 0,
            "own": False,
        },
    ]

    played = sipvm(data, "message", "mark-played", str(m1.id), "--as", "1900")
    assert played.returncode == 0 and "marked played" in played.stdout
    listing = json.loads(
        sipvm(data, "messages", "--inbox", "2001", "--as", "1004", "--json").stdout
    )
    assert [(x["id"], x["played"], x["played_by"]) for x in listing] == [
        (m2.id, False, None),
        (m1.id, True, "1900"),
    ]
    assert set(listing[0]) >= {
        "id",
        "inbox",
        "caller",
        "caller_name",
        "received_at",
        "duration_s",
        "urgent",
        "played",
        "played_by",
    }
    assert listing[1]["caller"] == "5550001" and listing[1]["duration_s"] == 3.0

    table = sipvm(data, "messages", "--inbox", "2001")
    assert table.returncode == 0 and "5550001" in table.stdout and "1900" in table.stdout

    mp3 = tmp_path / "m1.mp3"
    refused = sipvm(data, "message", "export", str(m1.id), "--as", "1004", "-o", str(mp3))
    assert refused.returncode == 3 and "download right" in refused.stderr and not mp3.exists()
    ok = sipvm(
        data, "message", "export", str(m1.id), "--as", "1002", "--format", "mp3", "-o", str(mp3)
    )
    assert ok.returncode == 0, ok.stderr
    assert seconds_with_tone(read_pcm_mono(mp3), 8000, 1200.0) == pytest.approx(3.0, abs=0.6)

    share = sipvm(data, "message", "share", str(m1.id), "--as", "1004", "--to", "1003")
    assert share.returncode == 0, share.stderr
    copies = json.loads(sipvm(data, "messages", "--inbox", "1003", "--json").stdout)
    assert [(c["caller"], c["played"], c["shared_by"]) for c in copies] == [
        ("5550001", False, "1004")
    ]

    denied = sipvm(data, "message", "delete", str(m2.id), "--as", "1004")
    assert denied.returncode == 3 and "delete right on inbox 2001" in denied.stderr
    deleted = sipvm(data, "message", "delete", str(m2.id), "--as", "1002")
    assert deleted.returncode == 0 and "deleted" in deleted.stdout
    twice = sipvm(data, "message", "delete", str(m2.id), "--as", "1002")
    assert twice.returncode == 0
    assert "already deleted (deleted by 1002" in twice.stdout

    restore = sipvm(data, "message", "restore", str(m2.id), "--as", "1002")
    assert restore.returncode == 3 and "only an admin" in restore.stderr
    restore = sipvm(data, "message", "restore", str(m2.id), "--as", "1001")
    assert restore.returncode == 0 and "restored" in restore.stdout


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["messages", "--inbox", "9999"], 4, "there is no inbox 9999"),
        (["messages", "--inbox", "2001", "--as", "1101"], 3, "play right on inbox 2001"),
        (["inboxes", "--member", "9999"], 4, "no user or common area has extension 9999"),
        (["message", "delete", "424242", "--as", "1002"], 4, "message 424242 does not exist"),
        (["message", "share", "424242", "--as", "1002", "--to", "1003"], 4, "does not exist"),
        (["message", "delete", "notanumber", "--as", "1002"], 2, "invalid int value"),
        (["messages"], 2, "--inbox"),
        (["directory", "apply", "/nonexistent.toml"], 2, "cannot read directory file"),
    ],
)
def test_errors_have_exit_codes_and_say_what_to_do(
    tmp_path: Path, example_directory_file: Path, args: list[str], code: int, text: str
) -> None:
    data = tmp_path / "data"
    assert sipvm(data, "directory", "apply", str(example_directory_file)).returncode == 0
    result = sipvm(data, *args)
    assert result.returncode == code, result.stderr
    assert text in result.stderr
    assert result.stdout == ""


def test_a_data_directory_open_to_others_is_made_private(
    tmp_path: Path, example_directory_file: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    result = sipvm(data, "directory", "apply", str(example_directory_file))
    assert result.returncode == 0, result.stderr
    assert data.stat().st_mode & 0o777 == 0o700
    assert "was open to other users (755); made it private (700)" in result.stderr


def test_phones_export_writes_the_files_the_server_serves_and_list_shows_the_keys(
    tmp_path: Path, example_directory_file: Path
) -> None:
    data = tmp_path / "data"
    assert sipvm(data, "directory", "apply", str(example_directory_file)).returncode == 0
    out = tmp_path / "phones"
    exported = sipvm(data, "phones", "export", str(out))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.splitlines()[-1] == "4 files for 3 phones"
    golden = REPO / "tests" / "golden" / "phones"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in golden.iterdir())
    for made in out.iterdir():
        assert made.read_bytes() == (golden / made.name).read_bytes(), made.name
        assert made.stat().st_mode & 0o077 == 0  # private, like every file sipvm writes
    listed = sipvm(data, "phones", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    carol = next(p for p in json.loads(listed.stdout) if p["owner"] == "1003")
    assert carol["files"] == ["805ec0123456.cfg"] and carol["model"] == "yealink"
    assert [k["dial"] for k in carol["keys"]] == ["*97*1002", "*97*1900", "*97*3001"]
    settings = tmp_path / "sipvm.toml"
    settings.write_text('[provisioning]\ntemplates = "/nonexistent"\n', encoding="utf-8")
    bad = sipvm(data, "phones", "export", str(out), "--config", str(settings))
    assert bad.returncode == 2
    assert "[provisioning] templates '/nonexistent' is not a folder" in bad.stderr

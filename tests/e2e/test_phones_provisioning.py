"""Provisioned desk phones against a live `sipvm serve --http-port`: the phone's file over real
HTTP, a key dialled exactly as the file writes it, and the lamp of that key's inbox.

- ``GET /provisioning/<mac>.cfg`` gives Carol's Yealink file: one line key per inbox she was
  granted (not her own), labelled with its name, dialing ``*97*EXT``. A pjsua2 caller from the
  PBX dials the Lobby key's value as written, logs in with Carol's PIN and hears the Lobby's
  message (its tone found in the recording); Carol's phone (a pjsua2 phone at the AOR of its
  directory entry) gets the lamp NOTIFYs of the Lobby account: lit by the message, out once
  it is played.
- A grant added with `sipvm directory apply` adds a key to the next fetch; removed, it is gone.
- Anything but a configured phone's name is 404; ``[provisioning] networks`` and basic
  authentication refuse what they should, with words that say what to do.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.support.tones import read_pcm_mono, seconds_with_tone

from .conftest import SERVER_HOST, Kit, Server, free_port, seed_message
from .test_http_api import start_live
from .test_menu_sip import log_in, menu_call
from .test_mwi_sip import lamp_states, phone

pytestmark = pytest.mark.slow

MAC = "805ec0123456"
LOBBY_HZ = 1500
DIRECTORY = """
[[site]]
name = "HQ"
timezone = "America/New_York"

[[user]]
ext = "1001"
name = "Alice Smith"
pin = "482916"

[[user]]
ext = "1003"
name = "Carol White"
pin = "315972"
[[user.phone]]
uri = "{carol}"
mac = "80:5E:C0:12:34:56"
model = "yealink"
label = "Reception"

[[common_area]]
ext = "1900"
name = "Lobby phone"
pin = "739201"
[[common_area.members]]
member = "1003"
rights = ["play", "delete"]

[[call_queue]]
ext = "2001"
name = "Sales & Support <EU>"
[[call_queue.members]]
member = "1003"
rights = ["play"]

[[call_queue]]
ext = "2002"
name = "Billing"
{billing_members}
"""
CAROL_ON_BILLING = '[[call_queue.members]]\nmember = "1003"\nrights = ["play"]'


def write_directory(tmp: Path, carol: str, *, billing: bool = False) -> Path:
    path = tmp / ("with-billing.toml" if billing else "directory.toml")
    text = DIRECTORY.format(carol=carol, billing_members=CAROL_ON_BILLING if billing else "")
    path.write_text(text, encoding="utf-8")
    return path


def start_http(tmp: Path, directory: Path, settings: str = "") -> tuple[Server, str]:
    """A live server with HTTP on ``directory`` (``test_http_api.start_live``)."""
    tmp.mkdir(parents=True, exist_ok=True)
    live = start_live(tmp, settings, directory=directory)
    return live.server, live.url


def yealink_keys(text: str) -> dict[int, dict[str, str]]:
    """``linekey.N.*`` of a Yealink file: N → {type, line, value, label}."""
    keys: dict[int, dict[str, str]] = {}
    for line in text.splitlines():
        found = re.fullmatch(r"linekey\.(\d+)\.(\w+) = (.*)", line)
        if found:
            keys.setdefault(int(found.group(1)), {})[found.group(2)] = found.group(3)
    return keys


def key_for(text: str, label: str) -> str:
    """What the key labelled ``label`` dials."""
    (value,) = [k["value"] for k in yealink_keys(text).values() if k.get("label") == label]
    return value


def test_the_phone_dials_its_key_into_the_inbox_and_gets_its_lamp(tmp_path: Path, kit: Kit) -> None:
    port = free_port()
    aor = f"sip:1003@127.0.0.1:{port}"
    carol_phone = phone(kit, "carol-phone", port, "1003", mwi=1000, timeout=40)
    server, url = start_http(tmp_path, write_directory(tmp_path, aor))
    try:
        reply = httpx.get(f"{url}/provisioning/{MAC}.cfg", timeout=10)
        assert reply.status_code == 200, reply.text
        assert reply.headers["cache-control"] == "no-store"
        text = reply.text
        assert text.startswith("#!version:1.0.0.1\n")
        assert "voice_mail.number.1 = *97" in text.splitlines()
        keys = yealink_keys(text)
        # Carol's two grants, never her own inbox; names as they are (a .cfg is not XML)
        assert sorted((k["label"], k["value"]) for k in keys.values()) == [
            ("Lobby phone", "*97*1900"),
            ("Sales & Support <EU>", "*97*2001"),
        ]
        assert all(k["type"] == "13" and k["line"] == "1" for k in keys.values())

        seed_message(server, tmp_path, "1900", LOBBY_HZ)
        dial = key_for(text, "Lobby phone")
        call = menu_call(server, "lobby-key", "1003", [*log_in("315972"), {"wait": 6.0}])
        call["to"] = f"sip:{dial}@{server.uri_host}"  # exactly what the key dials
        kit.peer("lobby-key", call | {"steps": [*call["steps"], {"hangup": True}]}).report(60)
        heard = read_pcm_mono(kit.tmp / "lobby-key.wav")
        assert seconds_with_tone(heard, 8000, LOBBY_HZ) >= 2.0  # the Lobby's message
        time.sleep(1.5)  # the lamp goes out once it is played
        report = carol_phone.report(45)
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])
    lobby = f"sip:1900@127.0.0.1:{port}"
    states = lamp_states(report, lobby)
    assert states[0] == "0/0" and "1/0" in states and states[-1] == "0/1", states
    assert all(n["request_line"] == f"NOTIFY {aor} SIP/2.0" for n in report["mwi"])


def test_a_grant_adds_a_key_and_its_removal_takes_it_away(tmp_path: Path) -> None:
    carol = "sip:1003@pbx.example.com"
    server, url = start_http(tmp_path, write_directory(tmp_path, carol))
    try:

        def labels() -> list[str]:
            reply = httpx.get(f"{url}/provisioning/{MAC}.cfg", timeout=10)
            assert reply.status_code == 200, reply.text
            return sorted(k["label"] for k in yealink_keys(reply.text).values())

        def after(path: Path, expected: list[str]) -> None:
            applied = server.cli("directory", "apply", str(path))
            assert applied.returncode == 0, applied.stderr
            deadline = time.monotonic() + 5
            while labels() != expected:
                assert time.monotonic() < deadline, labels()
                time.sleep(0.1)

        assert labels() == ["Lobby phone", "Sales & Support <EU>"]
        after(
            write_directory(tmp_path, carol, billing=True),
            ["Billing", "Lobby phone", "Sales & Support <EU>"],
        )
        after(write_directory(tmp_path, carol), ["Lobby phone", "Sales & Support <EU>"])
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])


def test_only_configured_names_are_served_and_the_settings_guard_them(tmp_path: Path) -> None:
    directory = write_directory(tmp_path, "sip:1003@pbx.example.com")
    server, url = start_http(tmp_path / "open", directory)
    try:
        for name in (
            "000000000000.cfg",
            "cfg805ec0123456.xml",
            "y000000000000.cfg",
            "..%2f..%2fetc",
        ):
            reply = httpx.get(f"{url}/provisioning/{name}", timeout=10)
            assert reply.status_code == 404, (name, reply.text)
            if name == "000000000000.cfg":  # a phone's kind of name: what to do about it
                assert "no phone in the directory has this name" in reply.text
        assert httpx.get(f"{url}/provisioning/{MAC.upper()}.cfg", timeout=10).status_code == 404
        httpx.get(f"{url}/provisioning/{MAC}.cfg", timeout=10).raise_for_status()
        server.wait_log(f"provisioning: {MAC}.cfg to {SERVER_HOST} (phone of 1003, yealink)")
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])

    guarded = (
        '[provisioning]\nnetworks = ["192.0.2.0/24"]\nusername = "phones"\npassword = "s3cret"\n'
    )
    server, url = start_http(tmp_path / "guarded", directory, guarded)
    try:
        reply = httpx.get(f"{url}/provisioning/{MAC}.cfg", timeout=10, auth=("phones", "s3cret"))
        assert reply.status_code == 403
        assert "[provisioning] networks" in reply.text
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])

    local = '[provisioning]\nnetworks = ["127.0.0.0/8"]\nusername = "phones"\npassword = "s3cret"\n'
    server, url = start_http(tmp_path / "local", directory, local)
    try:
        name = f"{url}/provisioning/{MAC}.cfg"
        refused = httpx.get(name, timeout=10)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith('Basic realm="sipvm provisioning"')
        assert httpx.get(name, timeout=10, auth=("phones", "wrong")).status_code == 401
        assert httpx.get(name, timeout=10, auth=("phones", "s3cret")).status_code == 200
        # no file names are guessed past the password: an unknown name is 401 first
        assert httpx.get(f"{url}/provisioning/000000000000.cfg", timeout=10).status_code == 401
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])

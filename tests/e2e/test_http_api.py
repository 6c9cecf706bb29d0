"""The HTTP API over real HTTP against a live `sipvm serve --http-port` on the example directory
(provisioning/examples/small-office.toml): signing in (the phone's lockout), sessions, CSRF,
bearer tokens, every right and refusal on messages, audio with Range, downloads, greetings,
live events.

Rights in the example directory that these tests lean on (queue 2001 "Sales"):
1002 play/download/delete/share (member) · 1004 play/share · 1900 play (a common area) ·
1001 admin: play (oversight of every queue) · 1003 and 1101 none. Dan (1004) may not download
or delete in his own inbox (policy) but may share from it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sipvm.app import DB_NAME, App
from sipvm.audio.greeting import MAX_UPLOAD_BYTES
from sipvm.domain.lockout import LoginOutcome
from tests.e2e.conftest import (
    EXAMPLE,
    SERVER_HOST,
    Server,
    seed_message,
    start_server,
    stored_message,
)
from tests.support.ports import free_ports
from tests.support.tones import read_pcm_mono, tone_present, write_tone_wav

pytestmark = pytest.mark.slow

PINS = {
    "1001": "482916",
    "1002": "739164",
    "1003": "315972",
    "1004": "604825",
    "1101": "927361",
    "1102": "258147",
    "1900": "739201",
}
SECURITY_HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
CONTRACT_MESSAGE_KEYS = {
    "id", "inbox", "caller", "caller_name", "received_at", "duration_s", "urgent", "played",
    "played_by",
}  # fmt: skip
"""A message's JSON keys as CONTRACT.md lists them (more may follow, never fewer)."""
LIVE_S = 2.0
"""How soon a change must reach an open event stream (the issue's bound)."""


@dataclass
class Live:
    """A running server with HTTP: ``url`` is ``http://127.0.0.1:P``."""

    server: Server
    url: str
    tmp: Path

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def sign_in(self, ext: str) -> httpx.Client:
        """A client signed in as ``ext`` whose changes carry the session's CSRF token."""
        client = self.client()
        reply = client.post("/api/v1/session", json={"ext": ext, "pin": PINS[ext]})
        assert reply.status_code == 200, reply.text
        client.headers["X-CSRF-Token"] = reply.json()["csrf"]
        return client

    def seed(self, inbox: str, freq_hz: float = 1200.0) -> int:
        return seed_message(self.server, self.tmp, inbox, freq_hz=freq_hz)


def start_live(tmp: Path, settings: str = "", *, directory: Path = EXAMPLE) -> Live:
    port = free_ports(SERVER_HOST, tcp=True)
    server = start_server(
        tmp, settings=settings, directory=directory, extra=("--http-port", str(port))
    )
    line = server.wait_log("portal: http://")
    assert line.rstrip().endswith(f"portal: http://{SERVER_HOST}:{port}/"), line
    return Live(server, f"http://{SERVER_HOST}:{port}", tmp)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One server for the module's tests (each test seeds the messages it acts on)."""
    running = start_live(tmp_path_factory.mktemp("http"))
    try:
        yield running
    finally:
        code = running.server.stop()
        assert code == 0, "\n".join(running.server.log[-30:])


def error_of(reply: httpx.Response) -> str:
    assert reply.headers["content-type"].startswith("application/json"), reply.text
    text = reply.json()["error"]
    assert isinstance(text, str) and text
    return text


# -- signing in ------------------------------------------------------------------------------


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session(
    live: Live,
) -> None:
    with live.client() as client:
        reply = client.post("/api/v1/session", json={"ext": "1002", "pin": PINS["1002"]})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["ext"] == "1002" and body["name"] == "Bob Jones" and body["admin"] is False
        cookie = reply.headers["set-cookie"]
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/"} <= flags
        assert "secure" not in flags  # plain http here; https gets Secure
        for name, value in SECURITY_HEADERS.items():
            assert value in reply.headers[name]
        assert reply.headers["cache-control"] == "no-store"
        # The store keeps only a hash of the session token.
        token = client.cookies["sipvm_session"]
        with sqlite3.connect(live.server.data / DB_NAME) as db:
            stored = [row[0] for row in db.execute("SELECT token_hash FROM web_sessions")]
        assert stored and token not in stored
        assert client.get("/api/v1/session").json()["ext"] == "1002"

        refused = client.delete("/api/v1/session")  # no CSRF token
        assert refused.status_code == 403
        assert "CSRF" in error_of(refused)
        done = client.delete("/api/v1/session", headers={"X-CSRF-Token": body["csrf"]})
        assert done.status_code == 200, done.text
        assert client.get("/api/v1/inboxes").status_code == 401
    # The old cookie, sent again, signs nobody in.
    with live.client(cookies={"sipvm_session": token}) as again:
        reply = again.get("/api/v1/inboxes")
        assert reply.status_code == 401
        assert "sign in again" in error_of(reply)


def test_a_wrong_pin_and_an_unknown_extension_get_the_same_words(live: Live) -> None:
    with live.client() as client:
        wrong = client.post("/api/v1/session", json={"ext": "1003", "pin": "999111"})
        unknown = client.post("/api/v1/session", json={"ext": "7777", "pin": "999111"})
        assert wrong.status_code == unknown.status_code == 401
        assert (
            error_of(wrong)
            == error_of(unknown)
            == ("wrong extension or PIN; check both and try again")
        )
        missing = client.post("/api/v1/session", json={"ext": "1003"})
        assert missing.status_code == 400
        assert "pin" in error_of(missing)
        assert client.get("/api/v1/inboxes").status_code == 401
    live.server.wait_log(
        "sipvm.security: login failed: source=127.0.0.1 caller=- extension=1003 "
        "reason=wrong-pin channel=web"
    )
    live.server.wait_log("extension=unknown reason=unknown-extension channel=web")


def test_five_wrong_pins_on_the_web_lock_the_phone_too(live: Live) -> None:
    with live.client() as client:
        for _ in range(5):
            reply = client.post("/api/v1/session", json={"ext": "1102", "pin": "999111"})
            assert reply.status_code == 401
        locked = client.post("/api/v1/session", json={"ext": "1102", "pin": PINS["1102"]})
        assert locked.status_code == 429
        assert "locked" in error_of(locked)
    live.server.wait_log("login locked: source=127.0.0.1 caller=- extension=1102 scope=ext")
    live.server.wait_log("login refused: source=127.0.0.1 caller=- extension=1102 reason=locked")

    async def phone_login() -> LoginOutcome:
        app = await App.open(live.server.data)
        try:  # the desk-phone menu's check, from the PBX's address
            return await app.logins.login("1102", PINS["1102"], peer="127.0.0.2", caller="555")
        finally:
            await app.close()

    assert asyncio.run(phone_login()) is LoginOutcome.LOCKED


def test_idle_sessions_end_and_only_a_listed_proxy_is_believed(tmp_path: Path) -> None:
    # 3 s: long enough that a loaded machine gets from signing in to the next request in time.
    settings = '[http]\nsession_idle_s = 3.0\nproxies = ["127.0.0.1"]'
    behind = start_live(tmp_path, settings=settings)
    try:
        with closing(behind.sign_in("1003")) as client:
            assert client.get("/api/v1/inboxes").status_code == 200
            time.sleep(3.5)  # longer than the idle time set above
            reply = client.get("/api/v1/inboxes")
            assert reply.status_code == 401
            assert "unused for too long" in error_of(reply)
        # The proxy at 127.0.0.1 says the browser is 192.0.2.77 and came over https.
        proxied = {"X-Forwarded-For": "192.0.2.77", "X-Forwarded-Proto": "https"}
        with behind.client(headers=proxied) as client:
            reply = client.post("/api/v1/session", json={"ext": "1003", "pin": PINS["1003"]})
            assert reply.status_code == 200
            assert "secure" in reply.headers["set-cookie"].lower()
            client.post("/api/v1/session", json={"ext": "1004", "pin": "999111"})
        behind.server.wait_log("login failed: source=192.0.2.77 caller=- extension=1004")
    finally:
        assert behind.server.stop() == 0


def test_forwarded_headers_from_anyone_else_are_not_believed(live: Live) -> None:
    proxied = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    with live.client(headers=proxied) as client:
        reply = client.post("/api/v1/session", json={"ext": "1004", "pin": PINS["1004"]})
        assert reply.status_code == 200
        assert "secure" not in reply.headers["set-cookie"].lower()
        assert (
            client.post("/api/v1/session", json={"ext": "1004", "pin": "999111"}).status_code == 401
        )
    live.server.wait_log("login failed: source=127.0.0.1 caller=- extension=1004")
    assert not any("203.0.113.9" in line for line in list(live.server.log))


# -- CSRF and bearer tokens ------------------------------------------------------------------


def test_a_change_without_the_csrf_token_is_refused(live: Live) -> None:
    message = live.seed("1003")
    with closing(live.sign_in("1003")) as client:
        csrf = client.headers.pop("X-CSRF-Token")
        for headers in ({}, {"X-CSRF-Token": "not-the-token"}):
            reply = client.post(f"/api/v1/messages/{message}/played", headers=headers)
            assert reply.status_code == 403
            assert "CSRF" in error_of(reply)
        assert stored_message(live.server, message)[0].played is False
        reply = client.post(f"/api/v1/messages/{message}/played", headers={"X-CSRF-Token": csrf})
        assert reply.status_code == 200, reply.text
        assert reply.json()["message"]["played_by"] == "1003"


def test_a_bearer_token_works_until_it_is_revoked(live: Live) -> None:
    created = live.server.cli("token", "create", "--member", "1004")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("sipvm_") and "shown only now" in created.stderr
    message = live.seed("2001")
    with live.client(headers={"Authorization": f"Bearer {token}"}) as client:
        inboxes = client.get("/api/v1/inboxes")
        assert inboxes.status_code == 200
        assert [i["ext"] for i in inboxes.json()] == ["1004", "2001"]
        # No cookie, no CSRF token needed.
        assert client.post(f"/api/v1/messages/{message}/played").status_code == 200
        revoked = live.server.cli("token", "revoke", "--member", "1004")
        assert revoked.returncode == 0, revoked.stderr
        reply = client.get("/api/v1/inboxes")
        assert reply.status_code == 401
        assert "revoked" in error_of(reply)
    with sqlite3.connect(live.server.data / DB_NAME) as db:
        hashes = [row[0] for row in db.execute("SELECT token_hash FROM api_tokens")]
    assert all(token.split("_")[-1] not in h for h in hashes)
    with live.client(headers={"Authorization": "Basic eDp5"}) as client:
        assert client.get("/api/v1/inboxes").status_code == 401


# -- rights on messages ----------------------------------------------------------------------


def test_listings_show_exactly_the_granted_inboxes(live: Live) -> None:
    expected = {
        "1001": ["1001", "2001", "3001", "4001"],
        "1002": ["1002", "2001", "3001"],
        "1003": ["1003", "1002", "1900", "3001"],
        "1101": ["1101", "4001"],
    }
    for member, inboxes in expected.items():
        with closing(live.sign_in(member)) as client:
            found = client.get("/api/v1/inboxes").json()
            assert [i["ext"] for i in found] == inboxes, member
            assert found[0]["own"] is True
    message = live.seed("2001")
    with closing(live.sign_in("1004")) as client:
        listed = client.get("/api/v1/inboxes/2001/messages")
        assert listed.status_code == 200
        assert message in [m["id"] for m in listed.json()]
        shape = listed.json()[0]
        assert set(shape) >= {"id", "caller", "received_at", "duration_s", "played_by"}
        assert client.get("/api/v1/inboxes/2001/messages?limit=1").json().__len__() == 1
        refused = client.get("/api/v1/inboxes/4001/messages")
        assert refused.status_code == 403
        assert error_of(refused)
        assert client.get("/api/v1/inboxes/8888/messages").status_code == 404


def test_pages_follow_the_link_header_through_the_whole_inbox(live: Live) -> None:
    for freq in (500.0, 600.0, 700.0, 800.0, 900.0):
        live.seed("1900", freq_hz=freq)
    with closing(live.sign_in("1003")) as client:
        whole = [m["id"] for m in client.get("/api/v1/inboxes/1900/messages?limit=1000").json()]
        assert len(whole) >= 5
        paged: list[int] = []
        address: str | None = "/api/v1/inboxes/1900/messages?limit=2"
        while address is not None:
            reply = client.get(address)
            assert reply.status_code == 200, reply.text
            page = [m["id"] for m in reply.json()]
            assert len(page) <= 2
            paged += page
            address = reply.links.get("next", {}).get("url")
            assert (address is None) == (len(page) < 2) or not page
        assert paged == whole  # every message once, in menu order
        wrong = client.get("/api/v1/inboxes/1900/messages?after=../../etc")
        assert wrong.status_code == 400
        assert "follow the Link header" in error_of(wrong)


#: Queue 2001: (member, action) -> status.
QUEUE_RIGHTS = [
    ("1003", "play", 403),
    ("1101", "play", 403),
    ("1900", "download", 403),
    ("1001", "download", 403),
    ("1004", "download", 403),
    ("1004", "delete", 403),
    ("1900", "delete", 403),
    ("1001", "delete", 403),
    ("1900", "share", 403),
    ("1001", "share", 403),
    ("1900", "play", 200),
    ("1001", "play", 200),
    ("1004", "play", 200),
    ("1004", "share", 200),
    ("1002", "share", 200),
    ("1002", "download", 200),
    ("1002", "delete", 200),
]


def act(client: httpx.Client, action: str, message: int) -> httpx.Response:
    if action == "play":
        return client.get(f"/api/v1/messages/{message}/audio")
    if action == "download":
        return client.get(f"/api/v1/messages/{message}/download?format=wav")
    if action == "delete":
        return client.delete(f"/api/v1/messages/{message}")
    return client.post(f"/api/v1/messages/{message}/share", json={"to": "1003"})


def test_each_right_is_enforced_and_each_refusal_has_words(live: Live) -> None:
    message = live.seed("2001")
    clients = {m: live.sign_in(m) for m in {m for m, _, _ in QUEUE_RIGHTS}}
    try:
        for member, action, status in QUEUE_RIGHTS:
            reply = act(clients[member], action, message)
            assert reply.status_code == status, (member, action, reply.text)
            if status == 403:
                assert f"{member}" in error_of(reply), (member, action)
    finally:
        for client in clients.values():
            client.close()
    found, trail = stored_message(live.server, message)
    assert found.deleted and found.deleted_by == "1002"
    actions = [(e.actor, e.action) for e in trail]
    assert ("1900", "play") in actions and ("1002", "download") in actions


def test_an_owner_policy_holds_on_the_web(live: Live) -> None:
    message = live.seed("1004")
    with closing(live.sign_in("1004")) as dan:
        assert act(dan, "download", message).status_code == 403
        assert act(dan, "delete", message).status_code == 403
        shared = act(dan, "share", message)
        assert shared.status_code == 200, shared.text
        copy = shared.json()["message"]
        assert copy["inbox"] == "1003" and copy["shared_by"] == "1004"
        assert act(dan, "play", message).status_code == 200


def test_share_with_a_note_and_to_nowhere(live: Live) -> None:
    message = live.seed("2001")
    with closing(live.sign_in("1002")) as bob:
        reply = bob.post(
            f"/api/v1/messages/{message}/share", json={"to": "1101", "note": "for the branch"}
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["text"].startswith(f"message {message} shared to inbox 1101")
        nowhere = bob.post(f"/api/v1/messages/{message}/share", json={"to": "7777"})
        assert nowhere.status_code == 404
        assert "7777" in error_of(nowhere)
        bad_note = bob.post(
            f"/api/v1/messages/{message}/share", json={"to": "1101", "note": "a\nb"}
        )
        assert bad_note.status_code == 400
        assert "note" in error_of(bad_note)
    trail = stored_message(live.server, message)[1]
    assert any(e.action == "share" and "note: for the branch" in e.detail for e in trail)


def test_a_shared_copy_tells_its_recipient_who_shared_it_and_the_note(live: Live) -> None:
    message = live.seed("2001")
    note = 'Call <b>them</b> back & say "today"'
    with closing(live.sign_in("1002")) as bob, closing(live.sign_in("1003")) as carol:
        shared = bob.post(f"/api/v1/messages/{message}/share", json={"to": "1003", "note": note})
        assert shared.status_code == 200, shared.text
        made = shared.json()["message"]
        assert (made["inbox"], made["shared_by"], made["note"]) == ("1003", "1002", note)
        listed = carol.get("/api/v1/inboxes/1003/messages")
        assert listed.status_code == 200, listed.text
        (copy,) = [m for m in listed.json() if m["id"] == made["id"]]
        assert (copy["source_id"], copy["shared_by"], copy["note"]) == (message, "1002", note)
        assert copy.keys() >= CONTRACT_MESSAGE_KEYS  # the contract's shape, and more
        (original,) = [
            m for m in bob.get("/api/v1/inboxes/2001/messages").json() if m["id"] == message
        ]
        assert (original["shared_by"], original["note"]) == (None, None)
        rows = carol.get("/inboxes/1003/rows")
        assert rows.status_code == 200, rows.text
        shown = "Call &lt;b&gt;them&lt;/b&gt; back &amp; say &#34;today&#34;"
        assert f'Shared by Bob Jones (1002): <span class="note">{shown}</span>' in rows.text


def test_played_and_new_and_restore(live: Live) -> None:
    message = live.seed("2001")
    with closing(live.sign_in("1002")) as bob, closing(live.sign_in("1001")) as admin:
        played = bob.post(f"/api/v1/messages/{message}/played")
        assert played.json()["changed"] is True and played.json()["message"]["played"]
        again = bob.post(f"/api/v1/messages/{message}/played")
        assert again.status_code == 200 and again.json()["changed"] is False
        assert "was already played (played by 1002" in again.json()["text"]
        new = bob.delete(f"/api/v1/messages/{message}/played")
        assert new.json()["message"]["played"] is False
        assert bob.delete(f"/api/v1/messages/{message}").status_code == 200
        refused = bob.post(f"/api/v1/messages/{message}/restore")
        assert refused.status_code == 403
        assert "admin" in error_of(refused)
        restored = admin.post(f"/api/v1/messages/{message}/restore")
        assert restored.status_code == 200, restored.text
        assert stored_message(live.server, message)[0].deleted is False
        assert admin.post(f"/api/v1/messages/{message}/restore").status_code == 409


# -- audio and downloads ---------------------------------------------------------------------


def test_playing_marks_played_for_everyone_and_ranges_come_back_as_206(live: Live) -> None:
    message = live.seed("2001")
    with closing(live.sign_in("1004")) as dan, closing(live.sign_in("1002")) as bob:
        part = dan.get(f"/api/v1/messages/{message}/audio", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206, part.text
        assert part.headers["content-range"].startswith("bytes 100-199/")
        assert part.headers["cache-control"] == "private, no-store"
        # A seek into the middle is not a play.
        assert stored_message(live.server, message)[0].played is False
        whole = dan.get(f"/api/v1/messages/{message}/audio")
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "audio/wav"
        assert whole.headers["cache-control"] == "private, no-store"
        assert whole.content[:4] == b"RIFF" and whole.content[100:200] == part.content
        seen_by_bob = bob.get("/api/v1/inboxes/2001/messages").json()
        mine = next(m for m in seen_by_bob if m["id"] == message)
        assert mine["played"] is True and mine["played_by"] == "1004"


def test_the_mp3_download_holds_the_callers_tone(live: Live, tmp_path: Path) -> None:
    message = live.seed("2001", freq_hz=1500.0)
    with closing(live.sign_in("1002")) as bob:
        reply = bob.get(f"/api/v1/messages/{message}/download", params={"format": "mp3"})
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"] == "audio/mpeg"
        assert reply.headers["content-disposition"] == (
            f'attachment; filename="message-{message}.mp3"'
        )
        assert reply.headers["cache-control"] == "private, no-store"
        bad = bob.get(f"/api/v1/messages/{message}/download", params={"format": "exe"})
        assert bad.status_code == 400
    mp3 = tmp_path / "download.mp3"
    mp3.write_bytes(reply.content)
    samples = read_pcm_mono(mp3)
    assert tone_present(samples, 8000, 1500.0)
    assert not tone_present(samples, 8000, 1200.0)
    # The download left nothing in the server's scratch area.
    scratch = live.server.data / "tmp"
    assert not any(p.suffix == ".mp3" for p in scratch.rglob("*")) if scratch.exists() else True


def test_two_members_deleting_at_once_one_wins_and_the_other_is_told(live: Live) -> None:
    message = live.seed("1900")
    lobby, carol = live.sign_in("1003"), live.sign_in("1003")
    try:
        with ThreadPoolExecutor(2) as pool:
            replies = list(
                pool.map(lambda c: c.delete(f"/api/v1/messages/{message}"), [lobby, carol])
            )
        assert sorted(r.status_code for r in replies) == [200, 409], [r.text for r in replies]
        late = next(r for r in replies if r.status_code == 409)
        assert f"message {message} was already deleted (deleted by 1003" in error_of(late)
        gone = carol.get(f"/api/v1/messages/{message}/audio")
        assert gone.status_code == 404
        assert "deleted by 1003" in error_of(gone)
        never = carol.get("/api/v1/messages/987654/audio")
        assert never.status_code == 404
        assert "987654" in error_of(never)
    finally:
        lobby.close()
        carol.close()


# -- greetings -------------------------------------------------------------------------------


def test_an_owner_uploads_hears_and_removes_a_greeting(live: Live, tmp_path: Path) -> None:
    wav = write_tone_wav(tmp_path / "greeting.wav", 700.0, 2.0)
    with closing(live.sign_in("1003")) as carol:
        put = carol.put("/api/v1/inboxes/1003/greetings/temporary", content=wav.read_bytes())
        assert put.status_code == 200, put.text
        assert put.json()["kind"] == "temporary" and put.json()["duration_s"] > 1
        listed = carol.get("/api/v1/inboxes/1003/greetings").json()
        assert [g["kind"] for g in listed] == ["temporary"]
        heard = carol.get("/api/v1/inboxes/1003/greetings/temporary")
        assert heard.status_code == 200 and heard.content[:4] == b"RIFF"
        assert heard.headers["cache-control"] == "private, no-store"
        not_audio = carol.put(
            "/api/v1/inboxes/1003/greetings/unavailable", content=b"this is not audio" * 100
        )
        assert not_audio.status_code == 400
        assert error_of(not_audio).startswith("the uploaded file ")  # never the scratch path
        assert "/tmp/" not in error_of(not_audio) and ".upload" not in error_of(not_audio)
        named = carol.put(
            "/api/v1/inboxes/1003/greetings/unavailable",
            content=b"this is not audio" * 100,
            headers={"X-Filename": "my%20greeting.mp3"},
        )
        assert named.status_code == 400
        assert error_of(named).startswith("'my greeting.mp3' ")
        stranger = carol.put("/api/v1/inboxes/1002/greetings/unavailable", content=wav.read_bytes())
        assert stranger.status_code == 403
        assert "1003 may not manage the greetings of inbox 1002" in error_of(stranger)
        assert carol.delete("/api/v1/inboxes/1003/greetings/temporary").status_code == 200
        again = carol.delete("/api/v1/inboxes/1003/greetings/temporary")
        assert again.status_code == 404
        assert "no temporary greeting" in error_of(again)
        empty = carol.put("/api/v1/inboxes/1003/greetings/busy", content=b"")
        assert empty.status_code == 400


def raw_put(live: Live, client: httpx.Client, path: str, head: dict[str, str], body: bytes) -> str:
    """Send a PUT by hand (headers, then ``body``, then nothing more) and read the answer: the
    server must answer without the rest of a body it was told is coming."""
    host, port = live.url.removeprefix("http://").split(":")
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    lines = [f"PUT {path} HTTP/1.1", f"Host: {host}:{port}", f"Cookie: {cookie}"]
    lines += [f"X-CSRF-Token: {client.headers['X-CSRF-Token']}"]
    lines += [f"{k}: {v}" for k, v in head.items()]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer.decode("latin-1")


def test_an_upload_over_the_limit_is_refused_before_it_is_read(live: Live) -> None:
    with closing(live.sign_in("1003")) as carol:
        declared = raw_put(
            live,
            carol,
            "/api/v1/inboxes/1003/greetings/busy",
            {"Content-Type": "audio/wav", "Content-Length": str(MAX_UPLOAD_BYTES + 1)},
            b"RIFF",
        )
        assert declared.startswith("HTTP/1.1 413"), declared[:200]
        assert "larger than 20 MB" in declared
        # Without a declared length, the count stops it as soon as it passes the limit.
        chunk = b"\0" * (1024 * 1024)
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(21))
        streamed = raw_put(
            live,
            carol,
            "/api/v1/inboxes/1003/greetings/busy",
            {"Content-Type": "audio/wav", "Transfer-Encoding": "chunked"},
            body,
        )
        assert streamed.startswith("HTTP/1.1 413"), streamed[:200]
    assert not list((live.server.data / "tmp").glob("*.upload"))


# -- live events -----------------------------------------------------------------------------


async def collect_events(client: httpx.AsyncClient, out: list[dict[str, object]]) -> None:
    """Append each event of ``client``'s stream to ``out`` until cancelled."""
    async with client.stream("GET", "/api/v1/events") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        out.append({"action": "open"})
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line.removeprefix("data: ")))


async def test_a_play_from_the_command_line_reaches_open_streams_within_two_seconds(
    live: Live,
) -> None:
    message = await asyncio.to_thread(live.seed, "2001")
    streams: dict[str, list[dict[str, object]]] = {"1002": [], "1101": []}
    clients, tasks = [], []
    for member, out in streams.items():
        client = httpx.AsyncClient(base_url=live.url, timeout=httpx.Timeout(30, read=None))
        clients.append(client)
        signed = await client.post("/api/v1/session", json={"ext": member, "pin": PINS[member]})
        assert signed.status_code == 200
        tasks.append(asyncio.create_task(collect_events(client, out)))
    try:
        async with asyncio.timeout(10):
            while not all(out for out in streams.values()):
                await asyncio.sleep(0.02)
        done = await asyncio.to_thread(
            live.server.cli, "message", "mark-played", str(message), "--as", "1004"
        )
        assert done.returncode == 0, done.stderr
        changed = time.monotonic()  # the change was committed before the command ended
        wanted = {"inbox": "2001", "message": message, "action": "play"}
        while not any(wanted.items() <= e.items() for e in streams["1002"]):
            assert time.monotonic() - changed < LIVE_S, streams["1002"]
            await asyncio.sleep(0.02)
        # Erin (1101) sees nothing of queue 2001 (a short bound of its own).
        await asyncio.sleep(0.5)
        assert not any(e.get("inbox") == "2001" for e in streams["1101"]), streams["1101"]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.aclose()


def test_the_openapi_description_names_the_routes(live: Live) -> None:
    with live.client() as client:
        spec = client.get("/api/v1/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/api/v1/session",
        "/api/v1/inboxes",
        "/api/v1/inboxes/{ext}/messages",
        "/api/v1/messages/{message_id}/audio",
        "/api/v1/messages/{message_id}/download",
        "/api/v1/messages/{message_id}",
        "/api/v1/messages/{message_id}/played",
        "/api/v1/messages/{message_id}/share",
        "/api/v1/messages/{message_id}/restore",
        "/api/v1/inboxes/{ext}/greetings/{kind}",
        "/api/v1/events",
    } <= paths
    assert spec["paths"]["/api/v1/inboxes"]["get"]["description"]


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio missing")
async def test_a_pool_serves_the_portal_once_and_its_streams_follow_every_worker(
    tmp_path: Path,
) -> None:
    port = free_ports(SERVER_HOST, tcp=True)
    server = await asyncio.to_thread(
        start_server, tmp_path, extra=("--workers", "2", "--http-port", str(port))
    )
    try:
        await asyncio.to_thread(server.wait_log, "portal: http://")
        deadline = time.monotonic() + 20
        while sum("sipvm ready" in line for line in list(server.log)) < 2:
            assert time.monotonic() < deadline, "\n".join(server.log[-30:])
            await asyncio.sleep(0.1)
        portal = [line for line in list(server.log) if "portal: http://" in line]
        assert len(portal) == 1 and "[worker" not in portal[0], portal
        events: list[dict[str, object]] = []
        async with httpx.AsyncClient(
            base_url=f"http://{SERVER_HOST}:{port}", timeout=httpx.Timeout(30, read=None)
        ) as client:
            signed = await client.post("/api/v1/session", json={"ext": "1002", "pin": PINS["1002"]})
            assert signed.status_code == 200, signed.text
            task = asyncio.create_task(collect_events(client, events))
            try:
                async with asyncio.timeout(10):
                    while not events:
                        await asyncio.sleep(0.02)
                message = await asyncio.to_thread(seed_message, server, tmp_path, "2001")
                changed = time.monotonic()
                wanted = {"inbox": "2001", "message": message, "action": "deposit"}
                while not any(wanted.items() <= e.items() for e in events):
                    assert time.monotonic() - changed < LIVE_S, events
                    await asyncio.sleep(0.02)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        assert await asyncio.to_thread(server.stop) == 0, "\n".join(server.log[-30:])

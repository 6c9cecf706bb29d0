"""The admins' HTTP API against a live `sipvm serve --http-port` (httpx over loopback): member
lists as directory revisions (the access-granted email reaches an SMTP server, `sipvm
directory export` shows the grant), refusals, hours, deleted messages and audit trails."""

from __future__ import annotations

import contextlib
import html
import json
import re
import shutil
import socket
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.support.ports import free_ports
from tests.support.tones import write_tone_wav

from .conftest import SERVER_HOST, Server, seed_message, start_server
from .test_email_sip import Inbox

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg missing"),
]

PINS = {"1001": "482916", "1002": "739164", "1003": "315972", "1004": "604825"}

DIRECTORY = """
[[site]]
name = "HQ"
timezone = "America/New_York"

[[user]]
ext = "1001"
name = "Alice Smith"
email = "alice@example.test"
pin = "482916"
admin = true

[[user]]
ext = "1002"
name = "Bob Jones"
email = "bob@example.test"
pin = "739164"
[[user.members]]
member = "1003"
rights = ["play"]

[[user]]
ext = "1003"
name = "Carol White"
email = "carol@example.test"
pin = "315972"

[[user]]
ext = "1004"
name = "Dan Brown"
email = "dan@example.test"
pin = "604825"

[[call_queue]]
ext = "2001"
name = "Sales"
[[call_queue.members]]
member = "1002"
rights = ["play", "download", "delete", "share"]
[call_queue.hours]
mon = ["09:00-17:00"]

[[auto_receptionist]]
ext = "3001"
name = "Main number"
[auto_receptionist.menu]
"1" = { action = "voicemail", inbox = "2001" }
[auto_receptionist.submenus.after]
"1" = { action = "voicemail" }
"""


@dataclass
class Portal:
    server: Server
    url: str
    smtp: Inbox

    @contextlib.contextmanager
    def client(self, ext: str | None = None) -> Iterator[httpx.Client]:
        """An HTTP client, signed in as ``ext`` (its CSRF token sent on every request)."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            if ext is not None:
                answer = client.post("/api/v1/session", json={"ext": ext, "pin": PINS[ext]})
                assert answer.status_code == 200, answer.text
                client.headers["X-CSRF-Token"] = answer.json()["csrf"]
            yield client


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """One server for the module (each test works on its own inboxes), with an SMTP server."""
    tmp = tmp_path_factory.mktemp("admin-http")
    smtp, smtp_port = Inbox(), free_ports(SERVER_HOST, 1, tcp=True)
    controller = Controller(smtp, hostname=SERVER_HOST, port=smtp_port)
    controller.start()
    directory = tmp / "dir.toml"
    directory.write_text(DIRECTORY, encoding="utf-8")
    http_port = free_ports(SERVER_HOST, 1, tcp=True)
    settings = (
        f'[smtp]\nhost = "{SERVER_HOST}"\nport = {smtp_port}\nretry_s = 1\n'
        'sender = "vm@example.test"\n'
    )
    server = start_server(
        tmp, directory=directory, settings=settings, extra=("--http-port", str(http_port))
    )
    try:
        line = server.wait_log("portal: http://")
        found = re.search(r"portal: (http://\S+?)/?$", line)
        assert found is not None, line
        yield Portal(server, found.group(1), smtp)
    finally:
        code = server.stop()
        controller.stop()
        assert code == 0, "\n".join(server.log[-30:])


def mail_to(smtp: Inbox, address: str, timeout: float = 30) -> list[EmailMessage]:
    """The emails to ``address``, once at least one has arrived."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = smtp.to(address)
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no email to {address} within {timeout} s")


def exported(server: Server) -> dict[str, Any]:
    result = server.cli("directory", "export")
    assert result.returncode == 0, result.stderr
    return tomllib.loads(result.stdout)


def members_in_file(doc: dict[str, Any], kind: str, ext: str) -> list[dict[str, Any]]:
    entry = next(e for e in doc[kind] if e["ext"] == ext)
    return list(entry.get("members", []))


def test_only_admins_get_in(portal: Portal) -> None:
    with portal.client() as anonymous:
        answer = anonymous.get("/api/v1/inboxes/2001/members")
        assert answer.status_code == 401
    with portal.client("1002") as bob:
        for method, path, body in [
            ("GET", "/api/v1/inboxes/2001/members", None),
            ("PUT", "/api/v1/inboxes/2001/members", []),
            ("DELETE", "/api/v1/inboxes/2001/members/1002", None),
            ("GET", "/api/v1/inboxes/1002/policy", None),
            ("PUT", "/api/v1/inboxes/2001/hours", {"override": "closed"}),
            ("GET", "/api/v1/inboxes/2001/deleted", None),
            ("GET", "/api/v1/admin/inboxes", None),
            ("GET", "/api/v1/directory", None),
            ("PUT", "/api/v1/users/1002/admin", {"admin": True}),
        ]:
            answer = bob.request(method, path, json=body)
            assert answer.status_code == 403, (method, path, answer.text)
            assert "only an admin user may" in answer.json()["error"]
            assert "1002 is not one" in answer.json()["error"]
    with portal.client("1001") as alice:
        del alice.headers["X-CSRF-Token"]  # a change without the session's CSRF token
        answer = alice.put("/api/v1/inboxes/2001/hours", json={"override": "closed"})
        assert answer.status_code == 403 and "CSRF" in answer.json()["error"]


def test_a_member_added_sees_the_inbox_and_is_emailed(portal: Portal) -> None:
    with portal.client("1001") as alice:
        listed = alice.get("/api/v1/inboxes/2001/members")
        assert listed.status_code == 200
        assert listed.json() == [
            {"member": "1002", "rights": ["play", "download", "delete", "share"]}
        ]
        etag = listed.headers["etag"]
        answer = alice.put(
            "/api/v1/inboxes/2001/members",
            json=[*listed.json(), {"member": "1004", "rights": ["play"]}],
            headers={"If-Match": etag},
        )
        assert answer.status_code == 200, answer.text
        assert {"member": "1004", "rights": ["play"]} in answer.json()
        assert answer.headers["etag"] != etag
        # The same change made on the old revision is refused, nothing applied.
        stale = alice.put(
            "/api/v1/inboxes/2001/members", json=listed.json(), headers={"If-Match": etag}
        )
        assert stale.status_code == 409
        assert "the directory changed since you read it" in stale.json()["error"]
    with portal.client("1004") as dan:
        inboxes = dan.get("/api/v1/inboxes")
        assert inboxes.status_code == 200
        assert [(i["ext"], i["rights"]) for i in inboxes.json()] == [
            ("1004", ["play", "download", "delete", "share"]),
            ("2001", ["play"]),
        ]
    granted = mail_to(portal.smtp, "dan@example.test")
    assert len(granted) == 1
    assert "You now have access to voicemail: Sales" in granted[0]["Subject"]
    assert {"member": "1004", "rights": ["play"]} in members_in_file(
        exported(portal.server), "call_queue", "2001"
    )


def test_invalid_members_name_the_field_and_change_nothing(portal: Portal) -> None:
    with portal.client("1001") as alice:
        before = alice.get("/api/v1/inboxes/1002/members")
        answer = alice.put(
            "/api/v1/inboxes/1002/members",
            json=[{"member": "1003", "rights": ["play"]}, {"member": "1099", "rights": ["play"]}],
        )
        assert answer.status_code == 400
        assert answer.json()["error"] == "members[1].member: 1099 is not in the directory"
        assert answer.json()["fields"] == {"members[1].member": "1099 is not in the directory"}
        answer = alice.put(
            "/api/v1/inboxes/1002/members", json=[{"member": "1003", "rights": ["fly"]}]
        )
        assert answer.status_code == 400
        assert answer.json()["error"].startswith("members[0].rights: unknown right 'fly'")
        after = alice.get("/api/v1/inboxes/1002/members")
        assert after.json() == before.json() == [{"member": "1003", "rights": ["play"]}]
        assert after.headers["etag"] == before.headers["etag"]


def test_the_owner_is_never_removed(portal: Portal) -> None:
    with portal.client("1001") as alice:
        answer = alice.delete("/api/v1/inboxes/1002/members/1002")
        assert answer.status_code == 403
        assert "1002 owns inbox 1002 and cannot be removed" in answer.json()["error"]
        answer = alice.put(
            "/api/v1/inboxes/1002/members", json=[{"member": "1002", "rights": ["play"]}]
        )
        assert answer.status_code == 400
        assert answer.json()["error"].startswith("members[0].member: 1002 owns this inbox")
    assert members_in_file(exported(portal.server), "user", "1002") == [
        {"member": "1003", "rights": ["play"]}
    ]


def test_owner_policy_and_email_on_grant(portal: Portal) -> None:
    with portal.client("1001") as alice:
        answer = alice.get("/api/v1/inboxes/1003/policy")
        assert answer.json() == {
            "policy": {
                "voicemail": True,
                "download_own": True,
                "delete_own": True,
                "share_own": False,
                "email_on_grant": True,
            },
            "email_on_grant": True,
        }
        answer = alice.put(
            "/api/v1/inboxes/1003/policy",
            json={"policy": {"delete_own": False}, "email_on_grant": False},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["policy"]["delete_own"] is False
        assert answer.json()["email_on_grant"] is False
        answer = alice.put("/api/v1/inboxes/1003/policy", json={"policy": {"fly": True}})
        assert answer.status_code == 400
        assert answer.json()["error"].startswith("policy.fly: not a setting of a user's policy")
    entry = next(e for e in exported(portal.server)["user"] if e["ext"] == "1003")
    assert entry["policy"]["delete_own"] is False and entry["policy"]["email_on_grant"] is False


def test_hours_override(portal: Portal) -> None:
    with portal.client("1001") as alice:
        now = alice.get("/api/v1/inboxes/2001/hours")
        assert now.status_code == 200
        assert now.json()["override"] == "auto" and now.json()["timezone"] == "America/New_York"
        forced = alice.put("/api/v1/inboxes/2001/hours", json={"override": "open"})
        assert forced.json()["period"] == "business" and forced.json()["override"] == "open"
        shown = portal.server.cli("hours", "show", "--inbox", "2001", "--json")
        assert json.loads(shown.stdout)["override"] == "open"  # calls follow it too
        back = alice.put("/api/v1/inboxes/2001/hours", json={"override": "auto"})
        assert back.json()["override"] == "auto"
        wrong = alice.put("/api/v1/inboxes/2001/hours", json={"override": "shut"})
        assert wrong.status_code == 400
        assert wrong.json()["error"].startswith("override: must be open, closed or auto")
        user = alice.get("/api/v1/inboxes/1002/hours")
        assert user.status_code == 400 and "only call queues" in user.json()["error"]


def test_restore_a_deleted_message_and_read_its_audit_trail(portal: Portal, tmp_path: Path) -> None:
    message_id = seed_message(portal.server, tmp_path, "2001")
    played = portal.server.cli("message", "mark-played", str(message_id), "--as", "1002")
    assert played.returncode == 0, played.stderr
    with portal.client("1002") as bob:
        assert bob.delete(f"/api/v1/messages/{message_id}").status_code == 200
    with portal.client("1001") as alice:
        deleted = alice.get("/api/v1/inboxes/2001/deleted").json()
        assert [(d["id"], d["deleted_by"]) for d in deleted] == [(message_id, "1002")]
        assert deleted[0]["restorable_until"] > deleted[0]["deleted_at"]
        restored = alice.post(f"/api/v1/messages/{message_id}/restore")
        assert restored.status_code == 200, restored.text
        assert alice.get("/api/v1/inboxes/2001/deleted").json() == []
        listed = alice.get("/api/v1/admin/inboxes/2001/messages").json()
        assert message_id in [m["id"] for m in listed]
        trail = alice.get(f"/api/v1/messages/{message_id}/audit")
        assert [(e["actor"], e["action"]) for e in trail.json() if e["action"] != "email"] == [
            ("caller", "deposit"),
            ("1002", "play"),
            ("1002", "delete"),
            ("1001", "restore"),
        ]
        assert alice.get("/api/v1/messages/999999/audit").status_code == 404
    with portal.client("1002") as bob:
        answer = bob.get(f"/api/v1/messages/{message_id}/audit")
        assert answer.status_code == 403


def test_greetings_of_a_receptionist_by_an_admin(portal: Portal, tmp_path: Path) -> None:
    wav = write_tone_wav(tmp_path / "business.wav", 660.0, 1.5).read_bytes()
    with portal.client("1001") as alice:
        answer = alice.put("/api/v1/inboxes/3001/greetings/menu-after", content=wav)
        assert answer.status_code == 200, answer.text
        assert answer.json()["kind"] == "menu-after"
        heard = alice.get("/api/v1/inboxes/3001/greetings/menu-after")
        assert heard.status_code == 200 and heard.content[:4] == b"RIFF"
        answer = alice.put("/api/v1/inboxes/3001/greetings/menu-nowhere", content=wav)
        assert answer.status_code == 400 and "kind: inbox 3001 has no" in answer.json()["error"]
        assert alice.delete("/api/v1/inboxes/3001/greetings/menu-after").status_code == 200
    with portal.client("1002") as bob:
        answer = bob.put("/api/v1/inboxes/3001/greetings/business", content=wav)
        assert answer.status_code == 403


def test_roles_admin_flag_and_a_bearer_token(portal: Portal) -> None:
    created = portal.server.cli("token", "create", "--member", "1001")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().split()[-1]
    with httpx.Client(
        base_url=portal.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as integration:  # no cookie, so no CSRF token to show
        made = integration.put("/api/v1/users/1003/admin", json={"admin": True})
        assert made.status_code == 200, made.text
        assert made.json() == {"admin": True}
        own = integration.put("/api/v1/users/1001/admin", json={"admin": False})
        assert own.status_code == 403 and "its own admin flag" in own.json()["error"]
        listed = integration.get("/api/v1/admin/inboxes").json()
        assert [i["ext"] for i in listed] == ["1001", "1002", "1003", "1004", "2001", "3001"]
        assert integration.get("/api/v1/roles").json() == []
    with portal.client("1003") as carol:
        assert carol.get("/api/v1/inboxes/2001/hours").status_code == 200  # admin now


# -- the admin pages (plain HTML forms with the session's CSRF token) -------------------------


def form_value(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found is not None, f"no field {name}"
    return found.group(1)


def problem_by(page: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="error-{re.escape(field)}"[^>]*>([^<]*)</p>', page)
    assert found is not None, f"no problem shown by {field}"
    return html.unescape(found.group(1))


def test_admin_pages_are_for_admins(portal: Portal) -> None:
    with portal.client() as anonymous:
        answer = anonymous.get("/admin/inboxes/2001")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signin?next=%2Fadmin%2Finboxes%2F2001"
    with portal.client("1002") as bob:
        answer = bob.get("/admin")
        assert answer.status_code == 403
        assert "only an admin user may see every inbox" in answer.text
        answer = bob.post("/admin/inboxes/2001/hours", data={"override": "closed"})
        assert answer.status_code == 403  # no CSRF token, and no admin anyway


def test_the_member_form_saves_a_revision_or_shows_each_problem(portal: Portal) -> None:
    with portal.client("1001") as alice:
        page = alice.get("/admin/inboxes/1003")
        assert page.status_code == 200 and 'id="members-form"' in page.text
        csrf, rev = form_value(page.text, "csrf"), form_value(page.text, "rev")
        answer = alice.post(
            "/admin/inboxes/1003/members",
            data={"csrf": csrf, "rev": rev, "member-new": "1099", "right-new": ["play"]},
        )
        assert answer.status_code == 400
        assert problem_by(answer.text, "member-new") == "1099 is not in the directory"
        answer = alice.post(
            "/admin/inboxes/1003/members",
            data={"csrf": csrf, "rev": rev, "member-new": "1002", "right-new": []},
        )
        assert answer.status_code == 400
        assert problem_by(answer.text, "right-new").startswith("give at least one of play")
        answer = alice.post(
            "/admin/inboxes/1003/members",
            data={"csrf": csrf, "rev": rev, "member-new": "1002", "right-new": ["download"]},
        )
        assert answer.status_code == 303, answer.text
        saved = alice.get(answer.headers["location"])
        assert "Access member list saved" in saved.text
        assert 'data-member="1002"' in saved.text
        # The old page's form, sent again, is refused: the directory moved on.
        stale = alice.post(
            "/admin/inboxes/1003/members", data={"csrf": csrf, "rev": rev, "member-new": ""}
        )
        assert stale.status_code == 409 and "the directory changed" in stale.text
    with portal.client("1002") as bob:
        inboxes = {i["ext"]: i["rights"] for i in bob.get("/api/v1/inboxes").json()}
        assert inboxes["1003"] == ["play", "download"]


def test_restore_from_the_page_and_read_the_trail(portal: Portal, tmp_path: Path) -> None:
    message_id = seed_message(portal.server, tmp_path, "1004")
    deleted = portal.server.cli("message", "delete", str(message_id), "--as", "1004")
    assert deleted.returncode == 0, deleted.stderr
    with portal.client("1001") as alice:
        page = alice.get("/admin/inboxes/1004")
        assert f'id="deleted-{message_id}"' in page.text
        answer = alice.post(
            f"/admin/messages/{message_id}/restore", data={"csrf": form_value(page.text, "csrf")}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/admin/inboxes/1004?saved=restored#deleted"
        page = alice.get(answer.headers["location"])
        assert "Message restored for everyone" in page.text
        assert f'id="deleted-{message_id}"' not in page.text
        trail = alice.get(f"/admin/messages/{message_id}")
        assert trail.status_code == 200
        whats = re.findall(r'<td data-label="What">([^<]*)</td>', trail.text)
        assert [w for w in whats if w != "emailed about it"] == [
            "left a message",
            "deleted it",
            "restored it",
        ]


def test_a_greeting_uploaded_from_the_page(portal: Portal, tmp_path: Path) -> None:
    wav = write_tone_wav(tmp_path / "holiday.wav", 550.0, 1.0).read_bytes()
    with portal.client("1001") as alice:
        page = alice.get("/admin/inboxes/3001")
        csrf = form_value(page.text, "csrf")
        answer = alice.post(
            "/admin/inboxes/3001/greetings/holiday",
            data={"csrf": csrf},
            files={"file": ("notes.txt", b"not audio at all", "text/plain")},
        )
        assert answer.status_code == 400
        problem = problem_by(answer.text, "greeting-holiday")
        assert problem.startswith("'notes.txt' is not an audio file")  # not a server path
        answer = alice.post(
            "/admin/inboxes/3001/greetings/holiday",
            data={"csrf": csrf},
            files={"file": ("holiday.wav", wav, "audio/wav")},
        )
        assert answer.status_code == 303
        page = alice.get(answer.headers["location"])
        assert 'src="/api/v1/inboxes/3001/greetings/holiday"' in page.text
        heard = alice.get("/api/v1/inboxes/3001/greetings/holiday")
        assert heard.status_code == 200 and heard.content[:4] == b"RIFF"


def test_an_upload_over_the_limit_is_refused_before_it_is_read(portal: Portal) -> None:
    with portal.client("1001") as alice:
        cookie = "; ".join(f"{k}={v}" for k, v in alice.cookies.items())
        csrf = alice.headers["X-CSRF-Token"]
    host, port = portal.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            (
                "POST /admin/inboxes/3001/greetings/closed HTTP/1.1\r\n"
                f"Host: {host}\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n"
                "Content-Length: 50000000\r\n\r\n--x\r\n"
            ).encode()
        )  # the rest of the 50 MB never comes: the answer must not wait for it
        answer = b""
        while b"larger than" not in answer and (chunk := conn.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"the file is larger than 20 MB" in answer

"""The members' portal in a real Chromium against a live `sipvm serve --http-port`.

Members of the example directory (provisioning/examples/small-office.toml) sign in, see the
inboxes granted to them with their rights, play, download and delete messages, and watch
changes made elsewhere arrive on their open pages without reloading them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.e2e.conftest import EXAMPLE
from tests.e2e.web_kit import (
    LIVE_MS,
    PHONE,
    PINS,
    Portal,
    browser,
    contexts,
    deposit,
    new_page,
    playwright_driver,
    portal,
    screenshot,
    signed_in_page,
    start_portal,
)
from tests.support.tones import read_pcm_mono, tone_present, write_tone_wav

__all__ = ["browser", "contexts", "playwright_driver", "portal"]  # fixtures used here

pytestmark = pytest.mark.slow

ALL_RIGHTS = ["play", "download", "delete", "share"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """One server for the tests of this module that each seed messages of their own."""
    running = start_portal(tmp_path_factory.mktemp("portal"))
    try:
        yield running
    finally:
        code = running.server.stop()
        assert code == 0, "\n".join(running.server.log[-30:])


def open_inbox(page: Page, portal: Portal, ext: str) -> Page:
    """Show inbox ``ext`` and wait until its event stream is connected."""
    page.goto(portal.at(f"/inboxes/{ext}"))
    expect(page.locator("body")).to_have_attribute("data-live", "on")
    return page


def row(page: Page, message_id: int) -> Locator:
    """The table row of a message on an inbox page."""
    return page.locator(f"#message-{message_id}")


# -- signing in -----------------------------------------------------------------------------


def test_wrong_pin_shows_why_then_the_right_pin_signs_in_and_out(
    shared: Portal, browser: Browser, contexts: list[BrowserContext]
) -> None:
    page = new_page(browser, contexts)
    page.goto(shared.at("/inboxes/1004"))
    expect(page).to_have_url(re.compile(r"/signin\?next=%2Finboxes%2F1004$"))

    page.get_by_label("Extension").fill("1004")
    page.get_by_label("PIN").fill("111111")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_have_text(
        "wrong extension or PIN; check both and try again"
    )
    expect(page).to_have_url(re.compile(r"/signin"))

    page.get_by_label("PIN").fill(PINS["1004"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/inboxes/1004$"))  # back where the member was going
    expect(page.locator("header .who")).to_contain_text("Signed in as Dan Brown 1004")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/signin$"))
    page.goto(shared.at("/inboxes"))
    expect(page).to_have_url(re.compile(r"/signin\?next="))


@pytest.mark.parametrize(
    ("asked", "lands"),
    [
        ("/inboxes/1004?page=1", "/inboxes/1004?page=1"),
        ("//evil.example/", "/inboxes"),
        ("/\\evil.example/", "/inboxes"),
        ("https://evil.example/", "/inboxes"),
    ],
)
def test_the_sign_in_form_without_script_goes_back_only_to_this_site(
    shared: Portal, asked: str, lands: str
) -> None:
    form = {"ext": "1004", "pin": PINS["1004"], "next": asked}
    answer = httpx.post(shared.at("/signin"), data=form, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == lands
    assert "sipvm_session=" in answer.headers["set-cookie"]


# -- what a member sees ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        (
            "1003",  # Carol: her own, Bob's (play), the lobby (play, delete), the main number
            [
                ("1003", "Carol White", ALL_RIGHTS),
                ("1002", "Bob Jones", ["play"]),
                ("1900", "Lobby phone", ["play", "delete"]),
                ("3001", "Main number", ["play", "delete"]),
            ],
        ),
        (
            "1002",  # Bob: his own, Sales (member), the main number (queue supervisors' role)
            [
                ("1002", "Bob Jones", ALL_RIGHTS),
                ("2001", "Sales", ALL_RIGHTS),
                ("3001", "Main number", ["play", "delete"]),
            ],
        ),
    ],
)
def test_a_member_sees_exactly_the_inboxes_granted_own_first(
    shared: Portal,
    browser: Browser,
    contexts: list[BrowserContext],
    member: str,
    expected: list[tuple[str, str, list[str]]],
) -> None:
    page = signed_in_page(browser, contexts, shared, member)
    items = page.locator("#inboxes > li")
    expect(items).to_have_count(len(expected))
    seen = [
        (
            item.get_attribute("data-inbox"),
            item.locator(".inbox-name").inner_text(),
            item.locator(".right").all_inner_texts(),
        )
        for item in items.all()
    ]
    assert seen == expected
    expect(items.first).to_contain_text("yours")


def test_actions_the_member_lacks_are_not_offered(
    shared: Portal, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    in_bobs = deposit(shared.server, tmp_path, "1002")
    in_lobby = deposit(shared.server, tmp_path, "1900")
    carol = signed_in_page(browser, contexts, shared, "1003")

    carol.goto(shared.at("/inboxes/1002"))  # play only
    mine = row(carol, in_bobs)
    expect(mine.locator("audio")).to_have_count(1)
    expect(mine.get_by_role("button", name="Delete")).to_have_count(0)
    expect(mine.get_by_role("link", name="MP3")).to_have_count(0)
    expect(mine.get_by_text("Share")).to_have_count(0)

    carol.goto(shared.at("/inboxes/1900"))  # play and delete
    mine = row(carol, in_lobby)
    expect(mine.get_by_role("button", name="Delete")).to_have_count(1)
    expect(mine.get_by_role("link", name="MP3")).to_have_count(0)

    bob = signed_in_page(browser, contexts, shared, "1002")
    bob.goto(shared.at("/inboxes/1002"))  # his own: everything
    his = row(bob, in_bobs)
    for name in ("MP3", "WAV"):
        expect(his.get_by_role("link", name=name)).to_have_count(1)
    expect(his.get_by_role("button", name="Delete")).to_have_count(1)
    expect(his.get_by_text("Share", exact=True).first).to_be_visible()


# -- live changes ---------------------------------------------------------------------------


def test_playing_on_one_page_shows_played_on_another_members_open_page(
    shared: Portal, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    message = deposit(shared.server, tmp_path, "1002")
    bob = open_inbox(signed_in_page(browser, contexts, shared, "1002"), shared, "1002")
    carol = open_inbox(signed_in_page(browser, contexts, shared, "1003"), shared, "1002")
    bob.evaluate("window.notReloaded = true")
    status = row(bob, message).locator(".status")
    expect(status).to_have_text("new")

    started = time.monotonic()
    row(carol, message).locator("audio").evaluate("audio => audio.play()")
    expect(status).to_contain_text("Played by Carol White (1003)", timeout=LIVE_MS)
    took = time.monotonic() - started
    assert took < LIVE_MS / 1000

    expect(row(bob, message)).to_have_class(re.compile(r"\bplayed\b"))
    expect(row(bob, message).get_by_role("button", name="Mark new")).to_be_visible()
    assert bob.evaluate("window.notReloaded") is True
    expect(row(carol, message).locator(".status")).to_contain_text("Played by Carol White (1003)")


def test_mark_new_and_delete_reach_the_other_open_page(
    shared: Portal, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    message = deposit(shared.server, tmp_path, "3001")
    assert shared.server.cli("message", "mark-played", str(message), "--as", "1002").returncode == 0
    bob = open_inbox(signed_in_page(browser, contexts, shared, "1002"), shared, "3001")
    carol = open_inbox(signed_in_page(browser, contexts, shared, "1003"), shared, "3001")
    expect(row(bob, message).locator(".status")).to_contain_text("Played by Bob Jones (1002)")

    row(carol, message).get_by_role("button", name="Mark new").click()
    expect(row(bob, message).locator(".status")).to_have_text("new", timeout=LIVE_MS)

    row(carol, message).get_by_role("button", name="Delete").click()
    expect(carol.locator("#notice")).to_contain_text("Message deleted for everyone")
    expect(row(bob, message)).to_have_count(0, timeout=LIVE_MS)
    expect(row(carol, message)).to_have_count(0)


def test_a_new_message_appears_on_open_pages(
    shared: Portal, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    carol = open_inbox(signed_in_page(browser, contexts, shared, "1003"), shared, "1900")
    listing = signed_in_page(browser, contexts, shared, "1003")
    expect(listing.locator("body")).to_have_attribute("data-live", "on")
    before = int(listing.locator('li[data-inbox="1900"] [data-count="new"]').inner_text())

    message = deposit(shared.server, tmp_path, "1900", caller="6175550142", caller_name="Ann Lee")
    expect(row(carol, message)).to_contain_text("Ann Lee", timeout=LIVE_MS)
    expect(row(carol, message).locator(".status")).to_have_text("new")
    expect(listing.locator('li[data-inbox="1900"] [data-count="new"]')).to_have_text(
        str(before + 1), timeout=LIVE_MS
    )


def test_sharing_says_why_it_was_refused_and_a_shared_copy_arrives_with_its_note(
    shared: Portal, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    message = deposit(shared.server, tmp_path, "1002", caller_name="Acme Supplies")
    carol = open_inbox(signed_in_page(browser, contexts, shared, "1003"), shared, "1003")
    bob = signed_in_page(browser, contexts, shared, "1002")
    bob.goto(shared.at("/inboxes/1002"))
    mine = row(bob, message)
    mine.locator("details.share summary").click()
    form = mine.locator("form.share-form")

    form.get_by_label("To extension").fill("1999")
    form.locator("button[type=submit]").click()
    expect(bob.locator("#notice")).to_have_text(
        "there is no inbox 1999 to share with; check the extension"
    )

    form.get_by_label("To extension").fill("1003")
    form.get_by_label("Note").fill("Please call them back today")
    form.locator("button[type=submit]").click()
    expect(bob.locator("#notice")).to_have_text("Message shared with 1003.")
    copy = carol.locator("tr.message", has_text="Shared by Bob Jones (1002)")
    expect(copy).to_contain_text("Acme Supplies", timeout=LIVE_MS)
    expect(copy.locator(".status")).to_have_text("new")
    expect(copy.locator(".shared-by")).to_have_text(
        "Shared by Bob Jones (1002): Please call them back today"
    )
    expect(copy.locator(".shared-by .note")).to_have_text("Please call them back today")
    expect(row(bob, message).locator(".shared-by")).to_have_count(0)  # the original: no note


def test_an_inbox_granted_meanwhile_appears_on_the_open_inbox_list(
    portal: Portal, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    carol = signed_in_page(browser, contexts, portal, "1003")
    expect(carol.locator("body")).to_have_attribute("data-live", "on")
    expect(carol.locator('li[data-inbox="2001"]')).to_have_count(0)

    granted = tmp_path / "directory.toml"
    text = EXAMPLE.read_text(encoding="utf-8")
    sales_members = '[[call_queue.members]]\nmember = "1002"\n'
    assert text.count(sales_members) == 1
    carol_too = '[[call_queue.members]]\nmember = "1003"\nrights = ["play"]\n\n'
    text = text.replace(sales_members, carol_too + sales_members)
    granted.write_text(text, encoding="utf-8")
    applied = portal.server.cli("directory", "apply", str(granted))
    assert applied.returncode == 0, applied.stderr

    sales = carol.locator('li[data-inbox="2001"]')
    expect(sales).to_contain_text("Sales")
    expect(sales.locator(".right")).to_have_text(["play"])


# -- downloads and greetings ----------------------------------------------------------------


def test_the_downloaded_mp3_holds_the_callers_voice(
    shared: Portal, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    message = deposit(shared.server, tmp_path, "1003", freq_hz=1200.0)
    carol = signed_in_page(browser, contexts, shared, "1003")
    carol.goto(shared.at("/inboxes/1003"))
    with carol.expect_download() as started:
        row(carol, message).get_by_role("link", name="MP3").click()
    download = started.value
    assert download.suggested_filename == f"message-{message}.mp3"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    head = saved.read_bytes()[:3]
    assert head == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0), head  # MP3 frame sync
    samples = read_pcm_mono(saved)
    assert len(samples) > 2.5 * 8000
    assert tone_present(samples, 8000, 1200.0)
    assert not tone_present(samples, 8000, 700.0)


def test_greetings_bad_upload_shows_its_error_good_one_is_in_force(
    shared: Portal, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    page = signed_in_page(browser, contexts, shared, "1101")
    page.get_by_role("link", name="Greetings").click()
    card = page.locator("#greeting-temporary")
    expect(card).to_contain_text("None uploaded")

    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are my notes, not a recording\n")
    card.locator('input[type="file"]').set_input_files(not_audio)
    card.get_by_role("button", name="Upload", exact=True).click()
    expect(card.locator(".error")).to_contain_text("not an audio file")
    expect(card).to_contain_text("None uploaded")

    tone = write_tone_wav(tmp_path / "away.wav", 440.0, 3.0)
    card.locator('input[type="file"]').set_input_files(tone)
    card.get_by_role("button", name="Upload", exact=True).click()
    expect(card.locator(".in-force")).to_contain_text("In force: 0:03")
    expect(card.locator("audio")).to_have_count(1)

    card.get_by_role("button", name="Remove").click()
    expect(card).to_contain_text("None uploaded")


# -- pictures for the README ----------------------------------------------------------------


def test_member_pages_screenshots(
    portal: Portal, browser: Browser, contexts: list[BrowserContext], tmp_path: Path
) -> None:
    """A small office's morning, photographed (SIPVM_SCREENSHOTS=docs/screenshots keeps the
    pictures; see tests/e2e/web_kit.py)."""
    server = portal.server
    calls = [
        ("1003", "2125550199", "", 900.0, 12.0, True, 95),
        ("1003", "6175550142", "Ann Lee", 1000.0, 34.0, False, 50),
        ("1003", "5551234", "Pat Customer", 1200.0, 7.0, False, 12),
        ("1002", "4155550123", "Acme Supplies", 1100.0, 21.0, False, 30),
        ("1900", "6175550177", "", 800.0, 9.0, False, 75),
        ("3001", "3125550100", "City Plumbing", 1300.0, 16.0, True, 20),
    ]
    ids = [
        deposit(
            server,
            tmp_path,
            inbox,
            caller=caller,
            caller_name=name,
            freq_hz=freq,
            seconds=seconds,
            urgent=urgent,
            minutes_ago=ago,
        )
        for inbox, caller, name, freq, seconds, urgent, ago in calls
    ]
    assert server.cli("message", "mark-played", str(ids[0]), "--as", "1003").returncode == 0

    carol = signed_in_page(browser, contexts, portal, "1003")
    screenshot(carol, "member-inboxes", tmp_path)
    open_inbox(carol, portal, "1003")
    screenshot(carol, "member-inbox", tmp_path)
    carol.goto(portal.at("/greetings"))
    card = carol.locator("#greeting-unavailable")
    card.locator('input[type="file"]').set_input_files(write_tone_wav(tmp_path / "hi.wav", 440, 4))
    card.get_by_role("button", name="Upload", exact=True).click()
    expect(card.locator(".in-force")).to_contain_text("In force")
    screenshot(carol, "member-greetings", tmp_path)

    phone = signed_in_page(browser, contexts, portal, "1003", viewport=PHONE)
    open_inbox(phone, portal, "1003")
    screenshot(phone, "member-inbox-phone", tmp_path)

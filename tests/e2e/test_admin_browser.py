"""The admins' pages in a real Chromium against a live `sipvm serve --http-port`, with an SMTP
server: an admin gives a member rights on a queue from the page; that member's portal lists
the queue with those rights and the access-granted email arrives. A refused save shows its
problem next to the field and changes nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, BrowserContext, expect

from tests.e2e.conftest import SERVER_HOST
from tests.e2e.test_email_sip import Inbox
from tests.e2e.test_http_admin import mail_to
from tests.e2e.web_kit import (
    Portal,
    browser,
    contexts,
    deposit,
    playwright_driver,
    screenshot,
    signed_in_page,
    start_portal,
)
from tests.support.ports import free_ports

__all__ = ["browser", "contexts", "playwright_driver"]  # fixtures used here

pytestmark = pytest.mark.slow


@pytest.fixture
def mailed(tmp_path: Path) -> Iterator[tuple[Portal, Inbox]]:
    """A portal on the example directory whose emails go to a local SMTP server."""
    smtp, port = Inbox(), free_ports(SERVER_HOST, 1, tcp=True)
    controller = Controller(smtp, hostname=SERVER_HOST, port=port)
    controller.start()
    settings = f'[smtp]\nhost = "{SERVER_HOST}"\nport = {port}\nsender = "vm@example.test"\n'
    running = start_portal(tmp_path, settings=settings)
    try:
        yield running, smtp
    finally:
        code = running.server.stop()
        controller.stop()
        assert code == 0, "\n".join(running.server.log[-30:])


def test_an_admin_grants_a_member_who_then_sees_the_queue_and_is_emailed(
    mailed: tuple[Portal, Inbox],
    browser: Browser,
    contexts: list[BrowserContext],
    tmp_path: Path,
) -> None:
    portal, smtp = mailed
    deposit(portal.server, tmp_path, "2001", caller="5550142", caller_name="Pat Doe")
    alice = signed_in_page(browser, contexts, portal, "1001")
    alice.get_by_role("link", name="Admin").click()
    expect(alice.get_by_role("heading", name="Every inbox")).to_be_visible()
    screenshot(alice, "admin-inboxes", tmp_path)
    alice.get_by_role("link", name="Sales").click()
    alice.wait_for_url(re.compile(r"/admin/inboxes/2001$"))

    # A member that is not in the directory: refused, the problem next to the field.
    alice.get_by_label("Add a user or common area").fill("1099")
    alice.get_by_label("play for the new member").check()
    alice.get_by_role("button", name="Save members").click()
    expect(alice.locator("#error-member-new")).to_have_text("1099 is not in the directory")
    expect(alice.locator("#problem")).to_contain_text("Nothing was saved")
    screenshot(alice, "admin-inbox-refused", tmp_path, full_page=False)

    # Carol, with play and download.
    alice.get_by_label("Add a user or common area").fill("1003")
    alice.get_by_label("download for the new member").check()
    alice.get_by_role("button", name="Save members").click()
    alice.wait_for_url(re.compile(r"saved=members"))
    expect(alice.locator("#saved")).to_contain_text("Access member list saved")
    carol_row = alice.locator('tr.member-row[data-member="1003"]')
    expect(carol_row.get_by_label("play for 1003")).to_be_checked()
    expect(carol_row.get_by_label("download for 1003")).to_be_checked()
    expect(carol_row.get_by_label("delete for 1003")).not_to_be_checked()
    alice.goto(portal.at("/admin/inboxes/2001"))
    screenshot(alice, "admin-inbox", tmp_path)

    carol = signed_in_page(browser, contexts, portal, "1003")
    sales = carol.locator('li.inbox[data-inbox="2001"]')
    expect(sales).to_be_visible()
    expect(sales.locator(".right")).to_have_text(["play", "download"])

    granted = mail_to(smtp, "carol@example.com")
    assert granted[0]["Subject"] == "You now have access to voicemail: Sales"

    # The owner of an inbox is shown but cannot be ticked away.
    alice.goto(portal.at("/admin/inboxes/1002"))
    expect(alice.locator("#member-owner")).to_contain_text("It cannot be removed")
    expect(alice.locator("#member-owner input")).to_have_count(0)

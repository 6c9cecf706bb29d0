"""Browser-test kit: a live `sipvm serve --http-port`, Debian's Chromium driven by Playwright.

Playwright never downloads a browser here: it launches the system's ``chromium`` (the Debian
package the README's test command installs) through ``executable_path``. The browser runs
headless; as root Chromium refuses its sandbox, so it is started without one (the pages it
opens are our own, on loopback).

Screenshots go to the test's temporary directory; with ``SIPVM_SCREENSHOTS=DIR`` in the
environment they go to ``DIR`` instead (``SIPVM_SCREENSHOTS=docs/screenshots`` refreshes the
README's pictures).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from sipvm.app import App
from sipvm.domain.messages import DepositFacts
from tests.e2e.conftest import SERVER_HOST, Server, start_server
from tests.support.ports import free_ports
from tests.support.tones import write_tone_wav

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
"""Where Debian's ``chromium`` package puts the browser (the launcher script first)."""

WAIT_MS = 10_000
"""How long a browser step or an ``expect`` may take before the test fails (page loads,
sign-in, a greeting's conversion), unless it says otherwise (:data:`LIVE_MS`)."""

expect.set_options(timeout=WAIT_MS)

LIVE_MS = 2_000
"""How soon a change made elsewhere must show on an open page (the issue's bound)."""

VIEWPORT = {"width": 1100, "height": 720}
"""A laptop-sized window; :data:`PHONE` is the narrow one."""

PHONE = {"width": 390, "height": 844}

PINS = {
    "1001": "482916",
    "1002": "739164",
    "1003": "315972",
    "1004": "604825",
    "1101": "927361",
    "1102": "258147",
}
"""PINs of the users in provisioning/examples/small-office.toml."""


def chromium_path() -> str:
    """The installed Chromium; the test fails with the install line when there is none."""
    for path in CHROMIUM_PATHS:
        if Path(path).exists():
            return path
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Chromium is not installed: apt-get install -y chromium (see README)")
    return found


@dataclass
class Portal:
    """A running server with its portal: ``url`` is the base, e.g. ``http://127.0.0.1:P``."""

    server: Server
    url: str

    def at(self, path: str) -> str:
        """The absolute address of ``path`` (which starts with ``/``)."""
        return self.url + path


def start_portal(tmp: Path, *, settings: str = "", extra: tuple[str, ...] = ()) -> Portal:
    """`sipvm serve` on the example directory with HTTP on a free loopback port; returns once
    the server logged the portal's address."""
    port = free_ports(SERVER_HOST, tcp=True)
    server = start_server(tmp, settings=settings, extra=("--http-port", str(port), *extra))
    line = server.wait_log("portal: http://")
    found = re.search(r"portal: (http://\S+?)/?$", line)
    assert found is not None, line
    assert found.group(1).endswith(f":{port}"), line
    return Portal(server, found.group(1))


@pytest.fixture
def portal(tmp_path: Path) -> Iterator[Portal]:
    """A live server with its portal, stopped (cleanly) after the test."""
    running = start_portal(tmp_path)
    try:
        yield running
    finally:
        code = running.server.stop()
        assert code == 0, "\n".join(running.server.log[-30:])


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """One headless Chromium for a module's tests (each test opens its own contexts)."""
    launched = playwright_driver.chromium.launch(
        executable_path=chromium_path(),
        headless=True,
        # no sandbox as root; audio plays when a test says so (no click on the player needed)
        args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
    )
    try:
        yield launched
    finally:
        launched.close()


class Contexts(list[BrowserContext]):
    """The browser contexts a test opened, and what went wrong in their pages: an uncaught
    script error, or anything the Content-Security-Policy refused (an inline script or style
    slipped into a template)."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def watch(self, page: Page) -> Page:
        """Note ``page``'s script errors and CSP refusals in :attr:`problems`."""
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: {error}"))
        page.on(
            "console",
            lambda message: (
                self.problems.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )
        return page


@pytest.fixture
def contexts(browser: Browser) -> Iterator[Contexts]:
    """Browser contexts (one per member: cookies apart) opened by a test, closed after it;
    the test fails when a page had a script error or broke the Content-Security-Policy."""
    opened = Contexts()
    try:
        yield opened
    finally:
        for context in opened:
            context.close()
    assert not opened.problems, "\n".join(opened.problems)


def new_page(
    browser: Browser, opened: list[BrowserContext], viewport: dict[str, int] = VIEWPORT
) -> Page:
    """A page in a fresh context (its own cookies), downloads allowed."""
    context = browser.new_context(
        viewport={"width": viewport["width"], "height": viewport["height"]},
        accept_downloads=True,
    )
    context.set_default_timeout(WAIT_MS)
    opened.append(context)
    page = context.new_page()
    return opened.watch(page) if isinstance(opened, Contexts) else page


def sign_in(page: Page, portal: Portal, ext: str, pin: str | None = None) -> Page:
    """Sign ``ext`` in on the sign-in page and wait for the inbox list."""
    page.goto(portal.at("/signin"))
    page.get_by_label("Extension").fill(ext)
    page.get_by_label("PIN").fill(pin if pin is not None else PINS[ext])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/inboxes$"))
    return page


def signed_in_page(
    browser: Browser,
    opened: list[BrowserContext],
    portal: Portal,
    ext: str,
    viewport: dict[str, int] = VIEWPORT,
) -> Page:
    """A new page (its own cookies) with ``ext`` signed in, showing the inbox list."""
    return sign_in(new_page(browser, opened, viewport), portal, ext)


def screenshot(page: Page, name: str, tmp: Path, *, full_page: bool = True) -> Path:
    """Save the page as ``NAME.png`` (in ``$SIPVM_SCREENSHOTS`` when set, else in ``tmp``)."""
    folder = Path(os.environ.get("SIPVM_SCREENSHOTS") or tmp)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    return path


def deposit(
    server: Server,
    tmp: Path,
    inbox: str,
    *,
    caller: str = "5551234",
    caller_name: str = "",
    freq_hz: float = 1200.0,
    seconds: float = 3.0,
    urgent: bool = False,
    minutes_ago: float = 0,
) -> int:
    """Store a message of a ``freq_hz`` tone from ``caller`` in ``inbox`` while the server
    runs (as :func:`tests.e2e.conftest.seed_message`, with the caller's name, urgency and age
    chosen); returns its id.

    The store is opened in a thread of its own: Playwright's synchronous API keeps an event
    loop running in the test's thread, where ``asyncio.run`` may not start another.
    """

    async def run() -> int:
        app = await App.open(server.data)
        try:
            wav = write_tone_wav(tmp / f"tone-{freq_hz:.0f}-{seconds:g}.wav", freq_hz, seconds)
            facts = DepositFacts(
                inbox=inbox,
                received_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
                caller=caller,
                caller_name=caller_name,
                urgent=urgent,
            )
            stored = await app.deposits.deposit_file(facts, wav)
            assert stored is not None
            return stored.id
        finally:
            await app.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()

"""What happens to a new INVITE: refuse it, or answer it and run the right dialog.

- From an address that is not a trusted peer: 403, whatever the extension (so a scanner
  learns nothing about which extensions exist), before anything is answered.
- While the server drains for shutdown, or has fallen behind (``domain.load``: a saturated
  machine; the front then tries another worker): 503 with Retry-After.
- A request that does not parse: 400.
- A call to the voicemail pilot (``*97``, ``voicemail``; ``*97*2001`` for one inbox) with no
  overflow headers runs the desk-phone menu (``flows.menu``); the caller's identity (P-Asserted-
  Identity, else From) names the desk phone, so only the PIN is asked.
- Otherwise the mailbox target (RFC 4458 > History-Info > Diversion > Request-URI > To) picks
  the inbox; an unknown inbox or one with voicemail off hears a short prompt and nothing is
  recorded. A call queue or shared line group follows its route for the current period
  (``flows.receptionist``); so does an auto receptionist called directly (an overflow to one
  leaves a message in its inbox); a user or common area runs the deposit dialog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sipvm.domain.caller_id import usable_caller_id
from sipvm.domain.menu import PilotCall, pilot_call
from sipvm.domain.model import Directory, Kind
from sipvm.domain.peers import TrustedPeers
from sipvm.domain.sip_message import MalformedSipError, p_asserted_identity, parse_request
from sipvm.domain.sip_uri import split_host_port
from sipvm.domain.targeting import Reason, Target, mailbox_target, resolve_inbox
from sipvm.flows.channel import CallChannel, CallerHungUp
from sipvm.flows.deposit import DepositCall, deposit_message
from sipvm.flows.menu import voicemail_menu
from sipvm.flows.ports import (
    CallControl,
    DirectorySource,
    GreetingFiles,
    MessageSink,
    Prompts,
    RoutingSource,
)
from sipvm.flows.receptionist import RoutedCall, RoutedServices, answer_routed
from sipvm.flows.session import MenuServices

log = logging.getLogger(__name__)

RETRY_AFTER_S = 30
BEHIND_RETRY_AFTER_S = 5
"""Retry-After when the worker is behind: the load of a burst passes in seconds."""


@dataclass(frozen=True)
class RouterSettings:
    """The parts of ``[sip]`` the router needs."""

    trusted_peers: frozenset[str]
    """Addresses or CIDR networks (``domain.peers``) whose INVITEs are answered."""
    pilots: frozenset[str]
    proxy_host: str = ""
    """Host[:port] REFERs point at; empty: the address the INVITE came from."""
    front: frozenset[str] = frozenset()
    """Addresses of the pool's SIP front: an INVITE from there carries the real sender in
    ``X-Sipvm-Source`` (the front removes any copy a caller sent)."""
    peers: TrustedPeers = field(init=False, repr=False, compare=False)
    """``trusted_peers`` parsed once, here: a bad entry stops the start (InvalidInputError)
    instead of refusing every call."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "peers", TrustedPeers.parse(sorted(self.trusted_peers)))


#: The header in which the pool's front names who sent an INVITE.
SOURCE_HEADER = "X-Sipvm-Source"


def _front_source(raw: str) -> str | None:
    """``ip:port`` from the front's ``X-Sipvm-Source`` header, or None."""
    try:
        value = parse_request(raw).header(SOURCE_HEADER)
    except MalformedSipError:
        return None
    if value is None:
        return None
    host, port = split_host_port(value)
    return value.strip() if host and port is not None else None


class CallRouter:
    """Decides, per INVITE, between refusing it and the dialog that answers it."""

    def __init__(
        self,
        settings: RouterSettings,
        directory: DirectorySource,
        *,
        prompts: Prompts,
        greetings: GreetingFiles,
        sink: MessageSink,
        clock: Callable[[], datetime],
        menu: MenuServices | None = None,
        routing: RoutingSource | None = None,
    ) -> None:
        self.settings = settings
        self.menu = menu
        self.routing = routing
        self.directory = directory
        self.prompts = prompts
        self.greetings = greetings
        self.sink = sink
        self.clock = clock
        self.draining = False
        self.behind = False
        """Set by the worker while its event loop lags (``domain.load.LagTracker``)."""

    async def on_invite(self, control: CallControl, key: int, raw: str, source: str) -> None:
        """Handle one new INVITE from ``source`` (``ip:port``), answering through ``control``."""
        host = split_host_port(source)[0]
        if host in self.settings.front:
            sender = _front_source(raw)
            if sender is None:
                log.warning("refused a call from the front %s without %s", host, SOURCE_HEADER)
                await control.reject(key, 403)
                return
            source, host = sender, split_host_port(sender)[0]
        if host not in self.settings.peers:
            log.warning("refused a call from %s: not a trusted peer", host)
            await control.reject(key, 403)
            return
        if self.draining or self.behind:
            retry = RETRY_AFTER_S if self.draining else BEHIND_RETRY_AFTER_S
            await control.reject(key, 503, (("Retry-After", str(retry)),))
            return
        try:
            request = parse_request(raw)
        except MalformedSipError as exc:
            log.warning("refused a malformed INVITE from %s: %s", host, exc)
            await control.reject(key, 400)
            return
        target = mailbox_target(request)
        directory = self.directory.current
        identity = p_asserted_identity(request) or request.from_
        # Checked after %-decoding: a caller id or name with control characters is anonymous,
        # so no caller can put its own lines into logs, listings or emails.
        asserted = identity.uri.user or ""
        caller = usable_caller_id(asserted)
        caller_name = usable_caller_id(identity.display_name or "")
        if caller != asserted:
            # %a: the text is the caller's; shown escaped whatever the log's formatter does.
            log.warning(
                "caller id %a from %s has control characters: taken as anonymous", asserted, host
            )
        refer_host = self.settings.proxy_host or source
        pilot = self._pilot(target)
        channel = await control.accept(key, refer_host=refer_host)
        try:
            if pilot is not None and self.menu is not None:
                log.info("menu call from %s (caller %s)", host, caller or "anonymous")
                await voicemail_menu(
                    channel,
                    self.menu,
                    hint=self.menu.logins.desk_phone(caller) if caller else None,
                    direct=pilot.inbox,
                    peer=host,
                    caller_id=caller,
                )
            else:
                await self._answer(channel, target, directory, caller, caller_name)
        except CallerHungUp:
            pass
        finally:
            await channel.hangup()

    def _routed_services(self) -> RoutedServices:
        return RoutedServices(
            directory=self.directory,
            prompts=self.prompts,
            greetings=self.greetings,
            sink=self.sink,
            clock=self.clock,
        )

    def _pilot(self, target: Target | None) -> PilotCall | None:
        """The pilot call this is: the pilot dialled directly, not a call diverted to it."""
        if target is None or target.source not in ("request-uri", "to"):
            return None
        return pilot_call(target.ext, self.settings.pilots)

    async def _answer(
        self,
        channel: CallChannel,
        target: Target | None,
        directory: Directory,
        caller: str,
        caller_name: str,
    ) -> None:
        inbox = resolve_inbox(target, directory) if target is not None else None
        is_pilot = target is not None and target.ext in self.settings.pilots
        if inbox is None or not inbox.voicemail_enabled or is_pilot:
            # The same words for unknown and disabled inboxes; the log says which.
            why = (
                "the pilot (no menu for this call)"
                if is_pilot
                else ("unknown inbox" if inbox is None else "voicemail is off")
            )
            log.info("call for %s: %s", target.ext if target else "?", why)
            await channel.play(self.prompts.get("deposit.no_mailbox"))
            await channel.play(self.prompts.get("common.goodbye"))
            return
        assert target is not None
        reason = target.reason if target.reason is not Reason.UNKNOWN else Reason.UNAVAILABLE
        if self.routing is not None and inbox.kind.has_routing:
            direct = target.source in ("request-uri", "to")
            if inbox.kind is not Kind.AUTO_RECEPTIONIST or direct:
                now = await self.routing.now(inbox.ext)
                log.info(
                    "call from %s for %s %s (%s): %s",
                    caller or "anonymous",
                    inbox.kind.value,
                    inbox.ext,
                    now.period.value,
                    type(now.route).__name__,
                )
                routed = RoutedCall(
                    entry=inbox,
                    period=now.period,
                    route=now.route,
                    caller=caller,
                    caller_name=caller_name,
                    called=target.original_called,
                    reason=reason,
                )
                await answer_routed(channel, self._routed_services(), routed)
                return
        defaults = directory.defaults
        call = DepositCall(
            inbox=inbox,
            reason=reason,
            caller=caller,
            caller_name=caller_name,
            called=target.original_called,
            max_s=float(defaults.max_message_s),
            min_s=float(defaults.min_message_s),
            operator=defaults.operator or None,
        )
        result = await deposit_message(
            channel,
            call,
            prompts=self.prompts,
            greetings=self.greetings,
            sink=self.sink,
            clock=self.clock,
        )
        log.info(
            "call from %s for inbox %s: %s",
            caller or "anonymous",
            inbox.ext,
            "message stored"
            if result.stored
            else f"no message ({result.transferred_to or 'none'})",
        )

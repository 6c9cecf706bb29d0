"""Message-waiting lamps (RFC 3842): which phones show which inbox, and what a NOTIFY says.

Every desk phone of every member of an inbox (the owner, the member list and role members;
not an admin's oversight view) shows that inbox's lamp. A phone of anyone else never gets the
inbox's counts.
"""

from __future__ import annotations

from collections.abc import Mapping

from sipvm.domain.messages import InboxCounts
from sipvm.domain.model import Directory, ext_sort_key
from sipvm.domain.rights import accessible_inboxes, rights_on
from sipvm.domain.sip_uri import has_ip_host, uri_host_port

#: The NOTIFY's Content-Type and Event.
CONTENT_TYPE = "application/simple-message-summary"
EVENT = "message-summary"


#: What a phone is told about an inbox it no longer shows (its member lost access).
CLEARED = InboxCounts()


def lamp_map(directory: Directory) -> Mapping[str, tuple[str, ...]]:
    """For each inbox, the phones (AORs) that show its lamp, in member order, each once."""
    found: dict[str, list[str]] = {}
    members = sorted(
        (e for e in directory.extensions.values() if e.kind.has_owner and e.phones),
        key=lambda e: ext_sort_key(e.ext),
    )
    for member in members:
        for access in accessible_inboxes(directory, member.ext):
            inbox = access.inbox.ext
            if not rights_on(directory, member.ext, inbox, oversight=False):
                continue
            phones = found.setdefault(inbox, [])
            phones.extend(p for p in member.phones if p not in phones)
    return {inbox: tuple(phones) for inbox, phones in found.items()}


def reachable_without_proxy(phone: str) -> bool:
    """Whether a NOTIFY can go straight to the AOR: its host is an IP address.

    A host name would be resolved by pjsip with a blocking lookup in the SIP thread, stalling
    every call; such phones need ``[sip] proxy``.
    """
    return has_ip_host(phone)


def message_account(inbox: str, phone: str) -> str:
    """The ``Message-Account`` for an inbox as told to ``phone``: the inbox at the phone's host.

    >>> message_account("2001", "sip:1001@pbx.example.com;transport=tcp")
    'sip:2001@pbx.example.com'
    """
    return f"sip:{inbox}@{uri_host_port(phone)}"


def summary_body(account: str, summary: InboxCounts) -> str:
    """The ``application/simple-message-summary`` body (RFC 3842 section 5.2), CRLF lines."""
    waiting = "yes" if summary.new > 0 else "no"
    return (
        f"Messages-Waiting: {waiting}\r\n"
        f"Message-Account: {account}\r\n"
        f"Voice-Message: {summary.new}/{summary.old} "
        f"({summary.urgent_new}/{summary.urgent_old})\r\n"
    )

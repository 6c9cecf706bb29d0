"""The desk-phone voicemail menu: log in, hear every inbox you were granted, walk them.

1. ``flows.login``: PIN (and the extension, unless the phone identified it).
2. ``*97*EXT`` (a pilot with an inbox): straight into inbox EXT when the member may play it;
   otherwise "You do not have access to that inbox." — the same words whether EXT exists or
   not — and on to the main menu.
3. Main menu, per page of nine: "<name>, 2 new, press 1." (the new count only when
   there are new messages; own inbox first, then by extension), ``#``/``*`` for the
   next/previous page, ``0`` for the own inbox's options. A member with one inbox goes straight
   into it; leaving it comes back here. Three rounds without an answer end the call.
4. ``flows.inbox`` walks the chosen inbox; ``flows.options`` runs the mailbox options.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sipvm.domain.caller_id import usable_caller_id
from sipvm.domain.menu import ANY_KEY, page
from sipvm.domain.messages import InboxSummary
from sipvm.errors import NotFoundError, NotPermittedError
from sipvm.flows.channel import CallChannel
from sipvm.flows.inbox import walk_inbox
from sipvm.flows.login import log_in
from sipvm.flows.options import mailbox_options
from sipvm.flows.session import MENU_ATTEMPTS, Caller, MenuServices, ask, name_prompt

log = logging.getLogger(__name__)


async def voicemail_menu(
    channel: CallChannel,
    services: MenuServices,
    *,
    hint: str | None,
    direct: str | None,
    peer: str,
    caller_id: str,
) -> None:
    """Run the whole desk-phone dialog on an answered call.

    ``caller_id`` is the decoded user part the peer asserted; one holding control characters
    counts as anonymous (``usable_caller_id``)."""
    usable = usable_caller_id(caller_id)
    if usable != caller_id:
        # %a: the text is the caller's; shown escaped whatever the log's formatter does.
        log.warning(
            "caller id %a from %s has control characters: taken as anonymous", caller_id, peer
        )
    member = await log_in(channel, services, hint=hint, peer=peer, caller=usable)
    if member is None:
        return
    caller = Caller(member=member, peer=peer)
    inboxes = await services.mailboxes.inboxes(member)
    if direct is not None:
        chosen = next((i for i in inboxes if i.ext == direct), None)
        if chosen is not None:
            await _open(channel, services, caller, chosen)
        else:
            await channel.play(services.prompts.get("menu.no_access"))
    elif len(inboxes) == 1:
        await _open(channel, services, caller, inboxes[0])
    await _main_menu(channel, services, caller)
    await channel.play(services.prompts.get("common.goodbye"))


async def _main_menu(channel: CallChannel, services: MenuServices, caller: Caller) -> None:
    prompts = services.prompts
    page_number = 0
    silent = 0
    while silent < MENU_ATTEMPTS:
        inboxes = await services.mailboxes.inboxes(caller.member)  # fresh counts each round
        current = page([i.ext for i in inboxes], page_number)
        by_ext = {i.ext: i for i in inboxes}
        files: list[Path] = []
        for digit, ext in enumerate(current.entries, start=1):
            files += await _entry(services, by_ext[ext], digit)
        if current.has_next:
            files += prompts.get("menu.more_inboxes")
        if current.has_previous:
            files += prompts.get("menu.earlier_inboxes")
        own = next((i for i in inboxes if i.own), None)
        if own is not None:
            files += prompts.get("menu.options_key")
        key = await ask(channel, files, keys=ANY_KEY)
        if not key:
            silent += 1
            continue
        silent = 0
        chosen = current.selected(key)
        if chosen is not None:
            await _open(channel, services, caller, by_ext[chosen])
        elif key == "#" and current.has_next:
            page_number += 1
        elif key == "*":
            if not current.has_previous:
                return
            page_number -= 1
        elif key == "0" and own is not None:
            await mailbox_options(channel, services, caller)
        else:
            await channel.play(prompts.get("common.invalid"))


async def _open(
    channel: CallChannel, services: MenuServices, caller: Caller, inbox: InboxSummary
) -> None:
    """Walk an inbox; access taken away meanwhile (a directory change) is said, not raised."""
    try:
        await walk_inbox(channel, services, caller, inbox)
    except (NotPermittedError, NotFoundError) as exc:
        log.info(
            "member %s lost access to inbox %s during the call: %s", caller.member, inbox.ext, exc
        )
        await channel.play(services.prompts.get("menu.no_access"))


async def _entry(services: MenuServices, inbox: InboxSummary, digit: int) -> list[Path]:
    """ "<name>, 2 new, press 1." — "<name>, press 1." with nothing new (then a pause)."""
    prompts = services.prompts
    files = await name_prompt(services, inbox.ext)
    if inbox.new:
        files += prompts.get("menu.new_count", n=inbox.new)
    return files + prompts.get("menu.press", key=str(digit))

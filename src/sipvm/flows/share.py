"""Sharing a message from the menu (key 8): target, confirmation, optional spoken comment.

"Enter the extension to share with, then press pound." → the target's name → "If this is
correct, press 1" → "Press 1 to prepend a message or 2 to forward without" → (beep, record the
comment, ``#``) → "Your message has been successfully forwarded." The copy in the target inbox
has its own played state; the services audit who shared what to whom. A target that does not
exist or has voicemail off hears "That mailbox is not available" (the same words either way).
"""

from __future__ import annotations

import asyncio
import logging

from sipvm.domain.menu import MAX_EXT_DIGITS
from sipvm.domain.messages import Message
from sipvm.flows.channel import CallChannel, CallerHungUp
from sipvm.flows.session import DIGITS, MENU_ATTEMPTS, Caller, MenuServices, ask, name_prompt

log = logging.getLogger(__name__)

COMMENT_MAX_S = 60.0
COMMENT_SILENCE_S = 5.0
MIN_COMMENT_S = 0.5


async def share_message(
    channel: CallChannel, services: MenuServices, caller: Caller, message: Message
) -> bool:
    """Run the share dialog for ``message``; True when a copy was made."""
    prompts = services.prompts
    for _ in range(MENU_ATTEMPTS):
        target = await ask(
            channel,
            prompts.get("menu.share_enter"),
            max_digits=MAX_EXT_DIGITS,
            keys=DIGITS + "#",
        )
        if not target:
            return False
        inbox = services.directory.current.get(target)
        if inbox is None or not inbox.voicemail_enabled or target == message.inbox:
            await channel.play(prompts.get("deposit.no_mailbox"))
            continue
        confirm = await ask(
            channel, await name_prompt(services, inbox) + prompts.get("menu.confirm")
        )
        if confirm != "1":
            continue
        choice = await ask(channel, prompts.get("menu.share_options"), keys="12")
        scratch = services.scratch() if choice == "1" else None
        comment = scratch
        try:
            if comment is not None:
                await channel.play(prompts.get("menu.record_comment") + prompts.get("deposit.beep"))
                said = await channel.record(
                    comment, max_s=COMMENT_MAX_S, silence_s=COMMENT_SILENCE_S, terminators="#"
                )
                if said.ended_by == "hangup":
                    raise CallerHungUp("hung up while recording a comment: nothing shared")
                if said.duration_s < MIN_COMMENT_S:
                    comment = None  # only the key: share without a comment
            await services.mailboxes.share(
                message.id, as_member=caller.member, to=target, comment=comment
            )
        finally:
            if scratch is not None:
                await asyncio.to_thread(scratch.unlink, missing_ok=True)
        await channel.play(prompts.get("menu.shared"))
        return True
    return False

"""Inside one inbox: hear the messages (new first, oldest first, then saved) and act on them.

Keys are the tables of ``domain.menu``. Every action goes through the services, which check
the member's right and that the message still exists; this flow only decides what to say:
- a key the member has no right for: "You do not have permission to ..." and nothing changes;
- a message another member deleted meanwhile: "That message is no longer available", next one.
A message becomes played for everyone when its playback starts (``Mailboxes.listen``).

What the caller hears: "Support: 2 new." (or "3 saved." when nothing is new: the walk reaches
the saved ones after the new ones anyway) — the inbox's recorded name, but not its extension
spelled out (3 s of digits the caller just chose or typed) — then the first message at once;
before each later one "message 2" / "last message". The envelope ("today at 11 45 A.M., from
5 5 5, 0 1 hundred") plays before the message, after it, or only on ``3``
(``MenuServices.envelope``, the ``[menu] envelope`` setting); ``3`` says it again in every
mode. A key typed during any prompt acts at once (or is kept for the next question).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sipvm.domain.caller_id import PhoneNumber
from sipvm.domain.menu import (
    MESSAGE_KEYS,
    PLAYBACK_KEYS,
    MessageAction,
    PlaybackAction,
    permitted,
    seek,
)
from sipvm.domain.messages import ActionResult, InboxSummary, Message, Outcome
from sipvm.errors import CorruptAudioError, InvalidInputError, NotFoundError, NotPermittedError
from sipvm.flows.channel import CallChannel
from sipvm.flows.session import (
    MENU_ATTEMPTS,
    Caller,
    MenuServices,
    ask,
    site_zone,
)
from sipvm.flows.share import share_message

log = logging.getLogger(__name__)

PAUSE_WAIT_S = 30.0
PAUSE_ROUNDS = 10
"""A pause lasts at most PAUSE_WAIT_S * PAUSE_ROUNDS; then the message options play."""

_NO_RIGHT_PROMPT = {
    MessageAction.DELETE: "menu.no_delete_right",
    MessageAction.SHARE: "menu.no_share_right",
}


async def walk_inbox(
    channel: CallChannel, services: MenuServices, caller: Caller, inbox: InboxSummary
) -> None:
    """Announce the inbox and walk its messages until the caller goes back (or none are left)."""
    prompts = services.prompts
    messages = await services.mailboxes.messages(inbox.ext, as_member=caller.member)
    ids = [m.id for m in messages]
    name = await services.greetings.path_for(inbox.ext, "name")
    intro = [name] if name is not None else []
    if not ids:
        await channel.play(intro + prompts.get("menu.no_messages"))
        return
    new = sum(1 for m in messages if not m.played)
    counts = (
        prompts.get("menu.new_count", n=new) if new else prompts.get("menu.saved_count", n=len(ids))
    )
    pressed = await channel.play(intro + counts, interrupt="*#")
    if pressed == "*":
        return
    walk = _Walk(channel, services, caller, inbox, ids)
    walk.skip_announcement = pressed == "#"  # straight to the first message
    await walk.run()


class _Walk:
    """The position in an inbox's message list and what each key does to it."""

    def __init__(
        self,
        channel: CallChannel,
        services: MenuServices,
        caller: Caller,
        inbox: InboxSummary,
        ids: list[int],
    ) -> None:
        self.channel = channel
        self.services = services
        self.prompts = services.prompts
        self.caller = caller
        self.inbox = inbox
        self.rights = frozenset(inbox.rights)
        self.ids = ids
        self.index = 0
        self.skip_announcement = False
        ext = services.directory.current.get(inbox.ext)
        self.zone = site_zone(services.directory.current, ext) if ext is not None else None

    async def run(self) -> None:
        while self.index < len(self.ids):
            opened = await self.services.mailboxes.listen(
                self.ids[self.index], as_member=self.caller.member
            )
            if opened is None:
                await self.channel.play(self.prompts.get("menu.message_gone"))
                del self.ids[self.index]
                continue
            message, audio = opened
            try:
                action = await self._present(message, audio)
            except (CorruptAudioError, OSError) as exc:
                # The row is there but its audio is not readable: say so, keep going.
                log.error("message %s: cannot play %s: %s", message.id, audio, exc)
                await self.channel.play(self.prompts.get("menu.message_gone"))
                self.index += 1
                continue
            done = await self._act_until_moved(message, audio, action)
            if done:
                return
        await self.channel.play(self.prompts.get("menu.no_more"))

    async def _present(self, message: Message, audio: Path) -> MessageAction | None:
        """Announce (and the envelope, when it comes first), play the message, then the
        envelope when it comes after; a key pressed on the way is returned."""
        envelope = self.services.envelope
        lead: list[Path] = []
        if self.skip_announcement:
            self.skip_announcement = False
        else:
            lead = self._announcement()
            if envelope == "before":
                lead += await self._envelope(message)
        if lead:
            key = await self.channel.play(lead, interrupt="".join(PLAYBACK_KEYS))
            if key is not None and key not in "*#0":
                return MESSAGE_KEYS[key]
        action = await self._play(audio, message.duration_s)
        if action is None and envelope == "after":
            key = await self.channel.play(
                await self._envelope(message), interrupt="".join(MESSAGE_KEYS)
            )
            if key is not None:
                return MESSAGE_KEYS[key]
        return action

    async def _play(self, audio: Path, length_s: float) -> MessageAction | None:
        """Play with * back, # forward, 0 pause; other message keys end playback and act."""
        position = 0.0
        while True:
            stopped = await self.channel.play_message(
                audio, start_s=position, interrupt="".join(PLAYBACK_KEYS)
            )
            if stopped.key is None:
                return None
            action = PLAYBACK_KEYS[stopped.key]
            if isinstance(action, MessageAction):
                return action
            if action is PlaybackAction.PAUSE:
                resumed = await self._pause()
                if resumed is not None:
                    return resumed
                position = stopped.position_s
            else:
                position = seek(stopped.position_s, action, length_s)

    async def _pause(self) -> MessageAction | None:
        """Wait for 0 (resume: None) or another message key (returned)."""
        await self.channel.play(self.prompts.get("menu.paused"), interrupt="0")
        for _ in range(PAUSE_ROUNDS):
            key = await self.channel.collect(max_digits=1, timeout_s=PAUSE_WAIT_S, terminators="")
            if key == "0" or key == "":
                if key == "0":
                    return None
                continue
            if key in MESSAGE_KEYS and key != "*":
                return MESSAGE_KEYS[key]
        return None

    async def _act_until_moved(
        self, message: Message, audio: Path, action: MessageAction | None
    ) -> bool:
        """Handle keys on this message until the walk moves; True to leave the inbox."""
        silent_rounds = 0
        while True:
            if action is None:
                key = await ask(self.channel, self._options(), keys="".join(MESSAGE_KEYS))
                if not key:
                    silent_rounds += 1
                    if silent_rounds >= MENU_ATTEMPTS:
                        return True
                    continue
                action = MESSAGE_KEYS.get(key)
                if action is None:
                    await self.channel.play(self.prompts.get("common.invalid"))
                    continue
            if not permitted(action, self.rights):
                await self.channel.play(self.prompts.get(_NO_RIGHT_PROMPT[action]))
                action = None
                continue
            try:
                moved = await self._do(action, message, audio)
            except NotPermittedError:
                # Rights changed during the call (the directory was re-applied).
                await self.channel.play(
                    self.prompts.get(_NO_RIGHT_PROMPT.get(action, "menu.no_access"))
                )
                moved = None
            if moved is not None:
                return moved
            action = None

    async def _do(self, action: MessageAction, message: Message, audio: Path) -> bool | None:
        """Carry out ``action``: True leaves the inbox, False moves to another message,
        None stays on this one (ask again)."""
        play = self.channel.play
        prompts = self.prompts
        mailboxes = self.services.mailboxes
        member = self.caller.member
        if action is MessageAction.MAIN_MENU:
            return True
        if action in (MessageAction.NEXT, MessageAction.SAVE):
            if action is MessageAction.SAVE:
                await play(prompts.get("menu.message_saved"))
            self.index += 1
            return False
        if action is MessageAction.REPEAT:
            return False
        if action is MessageAction.PREVIOUS:
            if self.index == 0:
                await play(prompts.get("menu.no_more"))
                return None
            self.index -= 1
            return False
        if action is MessageAction.ENVELOPE:
            await play(await self._envelope(message))
            return None
        if action is MessageAction.MARK_NEW:
            result = await mailboxes.mark_new(message.id, as_member=member)
            if result.message is None or result.message.deleted:
                await play(prompts.get("menu.message_gone"))
                del self.ids[self.index]
                return False
            await play(prompts.get("menu.marked_new"))
            return None
        if action is MessageAction.DELETE:
            deleted: ActionResult | None
            try:
                deleted = await mailboxes.delete(message.id, as_member=member)
            except NotFoundError:
                deleted = None
            gone = (
                deleted is None or deleted.outcome is not Outcome.DONE
            )  # another member was first
            await play(prompts.get("menu.message_gone" if gone else "menu.deleted"))
            del self.ids[self.index]
            return False
        if action is MessageAction.SHARE:
            try:
                await share_message(self.channel, self.services, self.caller, message)
            except NotFoundError:
                await play(prompts.get("menu.message_gone"))
                del self.ids[self.index]
                return False
            except InvalidInputError as exc:
                log.info("share of message %s by %s refused: %s", message.id, member, exc)
                await play(prompts.get("deposit.no_mailbox"))
            return None
        raise AssertionError(f"unhandled action {action}")

    def _announcement(self) -> list[Path]:
        """Nothing before the first message (the inbox intro just came), then "message 2" ...
        "last message"."""
        prompts = self.prompts
        if self.index == 0:
            return []
        if self.index == len(self.ids) - 1:
            return prompts.get("menu.last_message")
        return prompts.get("menu.message_number", n=self.index + 1)

    async def _envelope(self, message: Message) -> list[Path]:
        """ "Today at 11 45 A.M., from 5 5 5, 0 1 hundred." — a known extension by its
        recorded name, else "from extension 1 0 0 2"."""
        prompts = self.prompts
        now = self.services.clock()
        when = message.received_at
        if self.zone is not None:
            when, now = when.astimezone(self.zone), now.astimezone(self.zone)
        files = prompts.get("menu.received", when=when, now=now)
        number = "".join(c for c in message.caller if c.isdigit())
        if not number:
            return files + prompts.get("menu.from_unknown")
        if self.services.directory.current.get(number) is None:
            return files + prompts.get("menu.from", caller=PhoneNumber(number))
        name = await self.services.greetings.path_for(number, "name")
        return files + prompts.get("menu.from_extension", name=name, ext=number)

    def _options(self) -> list[Path]:
        return self.prompts.get("menu.message_options") + self.prompts.get("menu.go_back")

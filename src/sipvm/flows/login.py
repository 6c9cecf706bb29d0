"""Logging in to the desk-phone menu: extension (unless the phone identified it) and PIN.

- A call from a known desk phone asks only for the PIN; typing ``*`` instead of a PIN asks
  for an extension (logging in to another mailbox from someone else's phone).
- A wrong extension and a wrong PIN hear the same "Login incorrect." (the service makes them
  cost the same time too). Three failures end the call.
- A locked extension or source hears that logins are locked and the call ends.
"""

from __future__ import annotations

from sipvm.domain.lockout import LoginOutcome
from sipvm.domain.menu import MAX_EXT_DIGITS
from sipvm.domain.pins import MAX_LEN as PIN_MAX_LEN
from sipvm.flows.channel import CallChannel
from sipvm.flows.session import DIGITS, MenuServices, ask

LOGIN_ATTEMPTS = 3
PIN_TIMEOUT_S = 8.0


async def log_in(
    channel: CallChannel, services: MenuServices, *, hint: str | None, peer: str, caller: str
) -> str | None:
    """The logged-in member's extension, or None when the call should end."""
    prompts = services.prompts
    ext = hint
    for _ in range(LOGIN_ATTEMPTS):
        if ext is None:
            ext = await ask(
                channel,
                prompts.get("login.extension"),
                max_digits=MAX_EXT_DIGITS,
                timeout_s=PIN_TIMEOUT_S,
                keys=DIGITS + "#",
            )
        pin = await ask(
            channel,
            prompts.get("login.password"),
            max_digits=PIN_MAX_LEN + 1,  # one too many: an over-long PIN is wrong, not cut
            timeout_s=PIN_TIMEOUT_S,
            keys=DIGITS + "*#",
        )
        if pin.startswith("*") and hint is not None:
            ext = hint = None  # someone else's phone: ask for the extension
            continue
        if ext and pin:
            outcome = await services.logins.login(ext, pin, peer=peer, caller=caller)
            if outcome is LoginOutcome.OK:
                return ext
            if outcome is LoginOutcome.LOCKED:
                await channel.play(prompts.get("login.locked"))
                await channel.play(prompts.get("common.goodbye"))
                return None
        await channel.play(prompts.get("login.incorrect"))
        ext = hint
    await channel.play(prompts.get("common.goodbye"))
    return None

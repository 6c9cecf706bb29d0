"""Every error sipvm raises on purpose, under one root.

Each error carries the process exit code the ``sipvm`` command uses for it (see CONTRACT.md:
0 ok, 2 usage or invalid input, 3 not permitted, 4 not found, 1 anything else) and a message
that says what was wrong and what to do about it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class SipvmError(Exception):
    """Root of every deliberate sipvm error."""

    exit_code = 1


class InvalidInputError(SipvmError):
    """The caller gave input that cannot be used (bad file, bad value, bad argument)."""

    exit_code = 2


class DirectoryError(InvalidInputError):
    """A directory file failed validation; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the directory"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))


class InvalidFieldsError(InvalidInputError):
    """Values given for named fields (of a form or a JSON body) cannot be used.

    ``fields`` maps each field (``members[2].member``, ``policy.voicemail``) to what is wrong
    with it, so a page can show each problem next to its field; the message lists them all.
    """

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = dict(fields)
        super().__init__("; ".join(f"{field}: {text}" for field, text in self.fields.items()))


class CorruptAudioError(InvalidInputError):
    """An audio file cannot be read as audio (not a WAV, truncated header, not decodable)."""


class TooLargeError(InvalidInputError):
    """An upload is larger than the limit (refused before it is read, where the size is told)."""


class NotPermittedError(SipvmError):
    """The acting member lacks the right for the action."""

    exit_code = 3


class NotSignedInError(NotPermittedError):
    """A web request without a valid session or API token, or a sign-in with a wrong extension
    or PIN (the same words for both)."""


class LockedError(NotPermittedError):
    """Sign-ins are locked for now after too many wrong PINs (phone and web alike)."""


class ConflictError(SipvmError):
    """What was asked is already done, e.g. a message another member deleted first; or what
    was being edited changed since it was read (a directory revision): nothing was changed."""


class NotFoundError(SipvmError):
    """The named extension, inbox or message does not exist (or is deleted)."""

    exit_code = 4


class StorageError(SipvmError):
    """The store cannot be opened or is in a state sipvm cannot work with."""


class PromptError(StorageError):
    """A prompt cannot be played: a sound file is missing or unusable, or the id is unknown."""

    def __init__(self, message: str, problems: Sequence[str] = (), fix: str = "") -> None:
        self.problems = list(problems)
        listed = "".join(f"\n  - {p}" for p in self.problems)
        super().__init__(message + (":" if listed else "") + listed + fix)


class PortInUseError(SipvmError):
    """A port the server must listen on (SIP, or every port of the RTP range) is held by
    another process; the message names the port and the setting that chooses another."""

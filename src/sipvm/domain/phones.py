"""What a provisioned desk phone gets: its files' names and a key per inbox its owner was granted.

Pure: the directory in, plain values out. ``provisioning.phones`` renders them through the
vendors' templates; the HTTP server and ``sipvm phones export`` serve or write the result.

Keys follow *grants* — the owner's member-list entries and roles — like the message-waiting
lamps and the emails (``rights.members_of(..., oversight=False)``): an admin's oversight view of
every queue is reachable from the main menu but puts no key on the admin's phone.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipvm.domain.model import DeskPhone, Directory, Extension, PhoneModel, ext_sort_key
from sipvm.domain.rights import rights_on


@dataclass(frozen=True)
class PhoneKey:
    """One programmable key: straight into a granted inbox after the PIN."""

    position: int
    """1 for the first key the phone's template places (after the line key)."""
    ext: str
    name: str
    dial: str
    """What the key dials: the pilot, ``*`` and the inbox (``*97*2001``)."""


@dataclass(frozen=True)
class ProvisionedPhone:
    """A phone sipvm writes a file for, with its owner."""

    phone: DeskPhone
    owner: Extension

    @property
    def mac(self) -> str:
        assert self.phone.mac is not None  # provisioned phones have one
        return self.phone.mac

    @property
    def model(self) -> PhoneModel:
        assert self.phone.model is not None
        return self.phone.model

    @property
    def user(self) -> str:
        """The user part of the phone's AOR (the line's account)."""
        rest = self.phone.uri.split(":", 1)[1]
        return rest.split("@", 1)[0] if "@" in rest else ""

    @property
    def host(self) -> str:
        rest = self.phone.uri.split(":", 1)[1]
        host = rest.split("@", 1)[1] if "@" in rest else rest
        return host.split(";", 1)[0]


#: The file names a phone of each family asks its provisioning server for (``{mac}``: 12
#: lower-case hex digits). Polycom's master file names the settings file after it.
FILE_NAMES: dict[PhoneModel, tuple[str, ...]] = {
    PhoneModel.YEALINK: ("{mac}.cfg",),
    PhoneModel.POLYCOM: ("{mac}.cfg", "{mac}-sipvm.cfg"),
    PhoneModel.GRANDSTREAM: ("cfg{mac}.xml",),
}


def provisioned_phones(directory: Directory) -> list[ProvisionedPhone]:
    """Every phone with a MAC and a model, by owner extension then as listed."""
    found = [
        ProvisionedPhone(phone, owner)
        for owner in directory.extensions.values()
        for phone in owner.desk_phones
        if phone.provisioned
    ]
    found.sort(key=lambda p: ext_sort_key(p.owner.ext))
    return found


def file_names(phone: ProvisionedPhone) -> tuple[str, ...]:
    """The names ``phone`` asks for, the first being the one it asks for first."""
    return tuple(name.format(mac=phone.mac) for name in FILE_NAMES[phone.model])


def phone_keys(directory: Directory, owner: str, pilot: str) -> list[PhoneKey]:
    """A key per inbox ``owner`` was granted other than its own, by extension, each dialing
    ``pilot*EXT``."""
    granted = [
        inbox
        for inbox in directory.extensions.values()
        if inbox.ext != owner and rights_on(directory, owner, inbox.ext, oversight=False)
    ]
    granted.sort(key=lambda e: ext_sort_key(e.ext))
    return [
        PhoneKey(position=i, ext=e.ext, name=e.name, dial=f"{pilot}*{e.ext}")
        for i, e in enumerate(granted, 1)
    ]

"""Desk phones in the directory file: ``[[user.phone]]`` / ``[[common_area.phone]]`` tables.

A phone is a URI string in ``phones`` (as before) or a table with its ``uri`` and, for a phone
sipvm writes a configuration file for, its ``mac`` and ``model`` (both or neither) and an
optional ``label``. :class:`PhoneChecks` reads the tables into the directory file's one problem
collector (one phone per MAC across the file); :func:`phone_document` writes one back.
"""

from __future__ import annotations

import re
from typing import Any

from sipvm.domain.model import DeskPhone, PhoneModel
from sipvm.provisioning.checks import Checks

AOR_RE = re.compile(r"^sips?:[^\s]+\Z")
_MAC_SEPARATORS = re.compile(r"[:.\-\s]")
_MAC_RE = re.compile(r"^[0-9a-f]{12}\Z")
_PHONE_KEYS = {"uri", "mac", "model", "label"}
_LABEL_MAX = 40


class PhoneChecks(Checks):
    """The phone tables' checks (``directory_file`` reads the rest of each entry)."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.macs: dict[str, str] = {}
        """MAC → the entry whose phone has it (one phone per MAC in the directory)."""

    def desk_phones(self, value: Any, where: str) -> list[DeskPhone]:
        """The ``[[user.phone]]`` tables: a URI and, for a phone sipvm provisions, its MAC and
        model (both or neither), and an optional label."""
        out = []
        for i, table in enumerate(self.tables(value, f"{where} phone", header="user.phone"), 1):
            w = f"{where} phone #{i}"
            self.keys(table, _PHONE_KEYS, w)
            uri = self.get(
                table,
                "uri",
                str,
                w,
                required=True,
                check=lambda v: None if AOR_RE.match(v) else "is not a SIP URI (sip:user@host)",
            )
            mac = self.get(table, "mac", str, w)
            if mac is not None:
                mac = self.mac(mac, w)
            model = self.get(table, "model", str, w)
            if model is not None:
                try:
                    model = PhoneModel(model.lower())
                except ValueError:
                    known = ", ".join(m.value for m in PhoneModel)
                    self.problem(w, f"unknown model {model!r}; sipvm provisions: {known}")
                    model = None
            if ("mac" in table) != ("model" in table):
                self.problem(
                    w,
                    "give both 'mac' and 'model' (a phone sipvm writes a file for) or neither",
                )
            label = self.get(
                table,
                "label",
                str,
                w,
                check=lambda v: (
                    None
                    if 0 < len(v) <= _LABEL_MAX and v.isprintable()
                    else f"must be 1 to {_LABEL_MAX} printable characters"
                ),
            )
            if uri is not None:
                out.append(DeskPhone(uri=uri, mac=mac, model=model, label=label))
        return out

    def mac(self, value: str, where: str) -> str | None:
        """A MAC address as 12 lower-case hex digits (``80:5E:C0:12:34:56`` is accepted), not
        taken by another phone."""
        mac = _MAC_SEPARATORS.sub("", value).lower()
        if not _MAC_RE.match(mac):
            self.problem(
                where,
                f"'mac' {value!r} is not a MAC address: 12 hex digits, e.g. \"805ec0123456\"",
            )
            return None
        first = self.macs.setdefault(mac, where)
        if first != where:
            self.problem(where, f"MAC {mac} is already the phone of {first}: one phone per MAC")
            return None
        return mac

    def all_phones(self, phones: list[str], desk: list[DeskPhone], where: str) -> list[str]:
        """Every AOR of the entry: ``phones`` then the tables', each once."""
        out = list(phones)
        for phone in desk:
            if phone.uri in out:
                self.problem(where, f"phone {phone.uri!r} is given twice")
            else:
                out.append(phone.uri)
        return out


def phone_document(d: DeskPhone) -> dict[str, Any]:
    out: dict[str, Any] = {"uri": d.uri}
    if d.mac is not None:
        out["mac"] = d.mac
    if d.model is not None:
        out["model"] = d.model.value
    if d.label is not None:
        out["label"] = d.label
    return out

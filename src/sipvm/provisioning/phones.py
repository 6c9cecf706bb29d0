"""Desk-phone configuration files, rendered from the vendors' templates and the directory.

``domain.phones`` says which phones are provisioned, the names of their files and their keys;
this module renders the Jinja2 templates of ``provisioning/templates/`` (shipped as data, an
admin's folder of the same names wins) into each file. Files are made on request from the
directory in force, so a grant added or removed shows in the next file a phone fetches.

The XML families (Polycom, Grandstream) are rendered with autoescape on, so a name holding
``&`` or ``<`` stays text; Yealink's ``key = value`` lines get the ``cfgvalue`` filter (control
characters and line breaks out), so a name cannot add a line of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from sipvm import __version__
from sipvm.config import Settings
from sipvm.domain.model import Directory, PhoneModel
from sipvm.domain.phones import ProvisionedPhone, file_names, phone_keys, provisioned_phones
from sipvm.errors import InvalidInputError

#: The templates of each family, one per file name of ``domain.phones.FILE_NAMES``.
TEMPLATES: dict[PhoneModel, tuple[str, ...]] = {
    PhoneModel.YEALINK: ("yealink.cfg.j2",),
    PhoneModel.POLYCOM: ("polycom.cfg.j2", "polycom-sipvm.cfg.j2"),
    PhoneModel.GRANDSTREAM: ("grandstream.xml.j2",),
}
_XML = frozenset({PhoneModel.POLYCOM, PhoneModel.GRANDSTREAM})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def shipped_templates() -> Path:
    """The templates that come with sipvm (``provisioning/templates/``)."""
    return Path(str(resources.files("sipvm.provisioning") / "templates"))


def cfg_value(value: object) -> str:
    """A value for a ``key = value`` line: no control characters or line breaks, trimmed."""
    return _CONTROL.sub(" ", str(value)).strip()


@dataclass(frozen=True)
class PhoneFile:
    name: str
    content: bytes
    phone: ProvisionedPhone


class PhoneFiles:
    """Renders every provisioned phone's files (see the module doc)."""

    def __init__(self, voicemail_number: str, overrides: Path | None = None) -> None:
        self.voicemail_number = voicemail_number
        folders = [str(overrides)] if overrides is not None and overrides.is_dir() else []
        folders.append(str(shipped_templates()))
        loader = jinja2.FileSystemLoader(folders)
        options: dict[str, Any] = {
            "loader": loader,
            "trim_blocks": True,
            "lstrip_blocks": True,
            "keep_trailing_newline": True,
            "undefined": jinja2.StrictUndefined,
        }
        self._xml = jinja2.Environment(autoescape=True, **options)
        self._text = jinja2.Environment(autoescape=False, **options)
        self._text.filters["cfgvalue"] = cfg_value
        self._xml.filters["cfgvalue"] = cfg_value

    def phones(self, directory: Directory) -> list[ProvisionedPhone]:
        return provisioned_phones(directory)

    def render_phone(self, directory: Directory, phone: ProvisionedPhone) -> list[PhoneFile]:
        """The files of one phone, in the order it asks for them."""
        env = self._xml if phone.model in _XML else self._text
        context = {
            "phone": {
                "mac": phone.mac,
                "model": phone.model.value,
                "label": phone.phone.label,
                "uri": phone.phone.uri,
                "user": phone.user,
                "host": phone.host,
            },
            "owner": {
                "ext": phone.owner.ext,
                "name": phone.owner.name,
                "kind": phone.owner.kind.value,
            },
            "voicemail_number": self.voicemail_number,
            "keys": [
                {"position": k.position, "ext": k.ext, "name": k.name, "dial": k.dial}
                for k in phone_keys(directory, phone.owner.ext, self.voicemail_number)
            ],
            "generated_by": f"sipvm {__version__}",
        }
        out = []
        for name, template in zip(file_names(phone), TEMPLATES[phone.model], strict=True):
            try:
                text = env.get_template(template).render(context)
            except jinja2.TemplateError as exc:
                where = getattr(exc, "filename", None) or template
                line = getattr(exc, "lineno", None)
                at = f"{where}, line {line}" if line else where
                raise InvalidInputError(
                    f"phone template {at}: {exc.message or exc}; fix the template (the shipped "
                    f"ones are in {shipped_templates()})"
                ) from exc
            out.append(PhoneFile(name, text.encode("utf-8"), phone))
        return out

    def render_all(self, directory: Directory) -> list[PhoneFile]:
        """Every provisioned phone's files."""
        return [f for p in provisioned_phones(directory) for f in self.render_phone(directory, p)]

    def file(self, directory: Directory, name: str) -> PhoneFile | None:
        """The file called ``name`` (as a phone asks for it), or None."""
        for phone in provisioned_phones(directory):
            if name in file_names(phone):
                return next(f for f in self.render_phone(directory, phone) if f.name == name)
        return None


def phone_files(settings: Settings) -> PhoneFiles:
    """The renderer the settings describe (also the HTTP server's)."""
    prov = settings.provisioning
    number = prov.voicemail_number or (settings.sip.pilot[0] if settings.sip.pilot else "")
    if not number:
        raise InvalidInputError(
            "no voicemail number for the phones' keys: set [provisioning] voicemail_number "
            '(e.g. "*97") or a [sip] pilot'
        )
    folder = Path(prov.templates) if prov.templates else settings.data / "provisioning/templates"
    if prov.templates and not folder.is_dir():
        raise InvalidInputError(
            f"[provisioning] templates {prov.templates!r} is not a folder; give the folder of "
            "your templates (named as in provisioning/templates/)"
        )
    return PhoneFiles(number, folder)

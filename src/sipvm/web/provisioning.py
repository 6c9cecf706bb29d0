"""``GET /provisioning/<name>``: a provisioned desk phone's configuration file.

The name is the one the phone asks for (Yealink ``<mac>.cfg``, Polycom ``<mac>.cfg`` and
``<mac>-sipvm.cfg``, Grandstream ``cfg<mac>.xml``); the file is rendered from the directory in
force at each request, so a new grant is on the phone at its next fetch. Anything else is 404,
including a well-formed name of a phone sipvm does not know.

``[provisioning]`` may limit the sources (``networks``) and ask for HTTP basic authentication
(``username``/``password``). Each file served is one log line (name, phone owner, source).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from sipvm.config import ProvisioningSettings
from sipvm.domain.model import PhoneModel
from sipvm.web.auth import client_address
from sipvm.web.context import WebContext, web_context

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

REALM = "sipvm provisioning"
_TYPES = {
    PhoneModel.YEALINK: "text/plain; charset=utf-8",
    PhoneModel.POLYCOM: "application/xml",
    PhoneModel.GRANDSTREAM: "application/xml",
}
_HEADERS = {"Cache-Control": "no-store"}


def _plain(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        text + "\n",
        status_code=status,
        media_type="text/plain; charset=utf-8",
        headers={**_HEADERS, **(headers or {})},
    )


def source_allowed(prov: ProvisioningSettings, address: str) -> bool:
    """Whether ``address`` is in ``[provisioning] networks`` (any address when none)."""
    if not prov.networks:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in prov.networks)


def credentials_ok(prov: ProvisioningSettings, header: str | None) -> bool:
    """Whether the ``Authorization`` header carries the configured basic credentials (always
    true when none are configured)."""
    if not prov.username:
        return True
    if not header or not header.lower().startswith("basic "):
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    same_user = hmac.compare_digest(user.encode(), prov.username.encode())
    same_password = hmac.compare_digest(password.encode(), prov.password.encode())
    return same_user and same_password


@router.get("/provisioning/{name}")
async def phone_file(
    name: str, request: Request, ctx: Annotated[WebContext, Depends(web_context)]
) -> Response:
    prov = ctx.settings.provisioning
    source = client_address(request)
    if not prov.enabled or ctx.phone_files is None:
        return _plain(404, "no such file: desk-phone provisioning is off on this server")
    if not source_allowed(prov, source):
        log.warning("provisioning: %s refused to %s: not in [provisioning] networks", name, source)
        return _plain(
            403,
            "this address may not fetch phone files; ask the admin to add its network to "
            "[provisioning] networks",
        )
    if not credentials_ok(prov, request.headers.get("authorization")):
        return _plain(
            401,
            "phone files need the provisioning user name and password (HTTP basic "
            "authentication); set them in the phone's provisioning server URL or settings",
            {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
        )
    found = ctx.phone_files.file(ctx.app.directory.current, name)
    if found is None:
        return _plain(
            404,
            "no such file: no phone in the directory has this name; give the phone's MAC "
            "and model in the directory ([[user.phone]] mac, model)",
        )
    log.info(
        "provisioning: %s to %s (phone of %s, %s)",
        name,
        source,
        found.phone.owner.ext,
        found.phone.model.value,
    )
    return Response(found.content, media_type=_TYPES[found.phone.model], headers=_HEADERS)

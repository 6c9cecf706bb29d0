"""Ending a dialog pjsua2 cannot end: an answered call whose caller never sent the ACK.

pjsip holds back the BYE of such a call until the ACK comes (RFC 3261 §15, pjproject issue
1712), so ``Call.hangup`` leaves its slot taken until Timer H and then a BYE's Timer F (about
64 s, measured). ``pjsip_inv_terminate`` ends the INVITE session at once: the slot is free
when it returns, and pjsip still sends the BYE. pjsua2 does not wrap it, so it is called
through ctypes from the module's own library, in the pjsip thread only. The dialog is found
by its identifiers (``pjsip_ua_find_dialog``, which locks it), never by a kept pointer, so a
call that has ended meanwhile is simply not found.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

from sipvm.domain.sip_headers import parse_name_addr
from sipvm.domain.sip_uri import MalformedSipError


@dataclass(frozen=True)
class DialogId:
    """What identifies a dialog to pjsip (RFC 3261 §12): Call-ID and both tags."""

    call_id: str
    local_tag: str
    remote_tag: str


def sent_message(event: Any) -> str:
    """The whole message pjsip sent, when ``event`` is the sending of one ("" otherwise)."""
    if event.type != pj.PJSIP_EVENT_TSX_STATE:
        return ""
    state = event.body.tsxState
    if state.type != pj.PJSIP_EVENT_TX_MSG:
        return ""
    return str(state.src.tdata.wholeMsg)


def dialog_of_answer(call_id: str, answer: str) -> DialogId | None:
    """The dialog a 200 OK we sent belongs to: our tag is in its To, the caller's in its From.

    pjsip prints its own responses with full header names, one header per line. None when
    a tag is missing or a header does not parse.
    """
    head = answer.split("\r\n\r\n", 1)[0]
    tags: dict[str, str] = {}
    for line in head.split("\r\n")[1:]:
        name, colon, value = line.partition(":")
        header = name.strip().lower()
        if colon and header in ("from", "to"):
            try:
                tags[header] = parse_name_addr(value).params.get("tag", "")
            except MalformedSipError:
                return None
    local, remote = tags.get("to", ""), tags.get("from", "")
    return DialogId(call_id, local, remote) if call_id and local and remote else None


class _PjStr(ctypes.Structure):
    """pjlib's ``pj_str_t``: a pointer and a length."""

    _fields_ = [("ptr", ctypes.c_char_p), ("slen", ctypes.c_ssize_t)]


def _pj_str(text: str) -> _PjStr:
    data = text.encode()
    return _PjStr(data, len(data))


def _pjsip_functions() -> tuple[Any, Any, Any, Any] | None:
    """``pjsip_ua_find_dialog``, ``pjsip_dlg_get_inv_session``, ``pjsip_inv_terminate`` and
    ``pjsip_dlg_dec_lock`` from the pjsua2 module's library (None if it does not export them)."""
    try:
        lib = ctypes.CDLL(pj._pjsua2.__file__)
        find, get_inv = lib.pjsip_ua_find_dialog, lib.pjsip_dlg_get_inv_session
        terminate, unlock = lib.pjsip_inv_terminate, lib.pjsip_dlg_dec_lock
    except (OSError, AttributeError):
        return None
    find.restype = ctypes.c_void_p
    find.argtypes = [ctypes.POINTER(_PjStr)] * 3 + [ctypes.c_int]
    get_inv.restype = ctypes.c_void_p
    get_inv.argtypes = [ctypes.c_void_p]
    terminate.restype = ctypes.c_int
    terminate.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    unlock.restype = None
    unlock.argtypes = [ctypes.c_void_p]
    return find, get_inv, terminate, unlock


_PJSIP = _pjsip_functions()


def terminate(dialog: DialogId, status: int = 408) -> bool:
    """End the INVITE session of ``dialog`` now (pjsip thread only): its slot is free when
    this returns, and pjsip sends the BYE it would otherwise hold back until an ACK.

    The dialog is looked up (and locked) by its identifiers, so a call that has ended in
    the meantime is simply not found. False when it was not found.
    """
    if _PJSIP is None:
        return False
    find, get_inv, terminate, unlock = _PJSIP
    ids = [_pj_str(dialog.call_id), _pj_str(dialog.local_tag), _pj_str(dialog.remote_tag)]
    dlg = find(*(ctypes.byref(i) for i in ids), 1)
    if not dlg:
        return False
    try:
        inv = get_inv(dlg)
        if inv:
            terminate(inv, status, 1)  # 1: report DISCONNECTED, so the call is dropped
        return bool(inv)
    finally:
        unlock(dlg)

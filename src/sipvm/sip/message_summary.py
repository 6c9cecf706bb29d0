"""Message-waiting NOTIFYs (RFC 3842) as pjsua2 requests outside calls, and their answers.

The engine sends them through its account, in the pjsip thread; the account's
``onSendRequest`` reports each final answer (or timeout) here.
"""

from __future__ import annotations

import logging
from typing import Any

import pjsua2 as pj

log = logging.getLogger(__name__)


def notify_request(phone: str, body: str) -> Any:
    """An unsolicited message-summary NOTIFY to ``phone`` (an AOR), carrying ``body``."""
    prm = pj.SendRequestParam()
    prm.method = "NOTIFY"
    option = prm.txOption
    option.targetUri = phone
    for name, value in (
        ("Event", "message-summary"),
        ("Subscription-State", "terminated;reason=noresource"),
    ):
        header = pj.SipHeader()
        header.hName, header.hValue = name, value
        option.headers.append(header)
    option.contentType = "application/simple-message-summary"
    option.msgBody = body
    return prm


def log_answer(prm: Any) -> None:
    """Log a NOTIFY's final answer when it is a failure (``onSendRequest``'s parameter)."""
    tsx = prm.e.body.tsxState.tsx
    code = int(tsx.statusCode)
    if code >= 300:
        log.info("message-waiting NOTIFY answered %d %s", code, tsx.statusText)

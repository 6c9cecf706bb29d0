"""PINs: the rules a PIN must follow, salted slow hashing, constant-time checks.

Hashes look like ``scrypt$16384$8$1$<salt b64>$<key b64>`` so the cost can be raised later
without breaking stored hashes. A PIN never appears in a message, a log line or an error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from itertools import pairwise

MIN_LEN = 4
MAX_LEN = 10
SCRYPT_N = 2**14
"""scrypt's cost for new hashes (memory and time grow with it). Stored hashes carry their own
cost, so raising it later keeps old hashes valid; test suites lower it for speed."""
_R, _P = 8, 1
_KEY_LEN = 32
_MAXMEM = 2**27


def pin_problem(pin: str, ext: str) -> str | None:
    """Why ``pin`` is not acceptable for extension ``ext``, or None when it is.

    Rules: 4 to 10 digits; not one digit repeated; not an ascending or descending run
    (1234, 9876, also wrapping 8901); not the extension itself. The answer never quotes the PIN.
    """
    if not pin.isdigit() or not pin.isascii():
        return "a PIN must be digits only"
    if not MIN_LEN <= len(pin) <= MAX_LEN:
        return f"a PIN must be {MIN_LEN} to {MAX_LEN} digits long"
    if len(set(pin)) == 1:
        return "a PIN must not be one digit repeated"
    steps = {(int(b) - int(a)) % 10 for a, b in pairwise(pin)}
    if steps in ({1}, {9}):
        return "a PIN must not be a run of ascending or descending digits"
    if pin == ext:
        return "a PIN must not be the extension number"
    return None


def hash_pin(pin: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``pin`` in the self-describing format above."""
    salt = os.urandom(16) if salt is None else salt
    n = SCRYPT_N
    key = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=_R, p=_P, dklen=_KEY_LEN)
    return "$".join(
        ["scrypt", str(n), str(_R), str(_P), _b64(salt), _b64(key)],
    )


def verify_pin(pin: str, pin_hash: str | None) -> bool:
    """Whether ``pin`` matches ``pin_hash``; False for a missing or malformed hash.

    A missing hash still costs one scrypt so that timing does not tell whether it exists.
    """
    parsed = _parse(pin_hash) if pin_hash else None
    if parsed is None:
        hashlib.scrypt(pin.encode(), salt=b"\0" * 16, n=SCRYPT_N, r=_R, p=_P, dklen=_KEY_LEN)
        return False
    n, r, p, salt, key = parsed
    candidate = hashlib.scrypt(
        pin.encode(), salt=salt, n=n, r=r, p=p, dklen=len(key), maxmem=_MAXMEM
    )
    return hmac.compare_digest(candidate, key)


def is_pin_hash(value: str) -> bool:
    """Whether ``value`` is a hash in the format this module writes."""
    return _parse(value) is not None


def _parse(value: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = value.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None
    # Bounds keep a hostile directory file from asking for gigabytes of memory.
    if not (
        n >= 2 and n & (n - 1) == 0 and r >= 1 and 1 <= p <= 16 and 128 * n * r <= _MAXMEM // 2
    ):
        return None
    if len(salt) < 8 or len(key) < 16:
        return None
    return n, r, p, salt, key


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("bad base64") from exc

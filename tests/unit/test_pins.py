"""PIN rules and hashing."""

from __future__ import annotations

import pytest

from sipvm.domain.pins import hash_pin, is_pin_hash, pin_problem, verify_pin


@pytest.mark.parametrize(
    ("pin", "problem"),
    [
        ("482916", None),
        ("2580", None),
        ("1357924680", None),
        ("123", "4 to 10 digits"),
        ("12345678901", "4 to 10 digits"),
        ("12a4", "digits only"),
        ("١٢٣٤٥", "digits only"),  # Arabic-Indic digits are not keypad digits
        ("7777", "one digit repeated"),
        ("1234", "ascending or descending"),
        ("6543", "ascending or descending"),
        ("8901", "ascending or descending"),
        ("1001", "the extension"),
    ],
)
def test_pin_rules(pin: str, problem: str | None) -> None:
    found = pin_problem(pin, "1001")
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
        assert pin not in found  # never quote the PIN back


@pytest.mark.usefixtures("production_pin_cost")
def test_the_product_hashes_at_scrypt_cost_16384() -> None:
    stored = hash_pin("482916")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_pin("482916", stored)
    assert not verify_pin("482917", stored)


def test_hash_is_salted_and_verifies() -> None:
    a, b = hash_pin("482916"), hash_pin("482916")
    assert a != b  # salted
    assert is_pin_hash(a)
    assert "482916" not in a
    assert verify_pin("482916", a) and verify_pin("482916", b)
    assert not verify_pin("482917", a)
    assert not verify_pin("", a)


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "plain",
        "scrypt$16384$8$1$AAAA$AAAA",
        "scrypt$3$8$1$c2FsdHNhbHQ=$" + "A" * 44,
        "scrypt$1048576$32$1$c2FsdHNhbHQ=$" + "A" * 44,
        "md5$x$y$z$a$b",
    ],
)
def test_malformed_or_hostile_hashes_never_verify(bad: str | None) -> None:
    assert not verify_pin("482916", bad)
    if bad:
        assert not is_pin_hash(bad)

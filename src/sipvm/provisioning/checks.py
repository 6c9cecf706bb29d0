"""The checks the directory file's readers share: one problem collector with typed getters
over untyped TOML values.

``directory_file`` reads the entries and ``routing_file`` their routing tables; both report
into one ``Checks``, so every problem of a file is worded the same way and an admin sees them
all at once (``problems``), each as ``FILE: WHERE: WHAT``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class Checks:
    """Collects the problems of one file (``problems``) while its values are read."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def problem(self, where: str, text: str) -> None:
        """Note that ``where`` (an entry, a table) has the problem ``text``."""
        self.problems.append(f"{self.source}: {where}: {text}")

    def table(self, value: Any, where: str, *, example: str | None = None) -> dict[str, Any] | None:
        """``value`` if it is a table, else None (and a problem, with ``example`` as a hint)."""
        if not isinstance(value, dict):
            hint = f", e.g. {example}" if example else ""
            self.problem(where, f"must be a table, not {type_name(value)}{hint}")
            return None
        return value

    def tables(self, value: Any, where: str, *, header: str | None = None) -> list[dict[str, Any]]:
        """The tables of an array of tables (``[[header]]``); anything else is a problem."""
        if not isinstance(value, list):
            self.problem(
                where,
                f"must be an array of tables ([[{header or where}]]), not {type_name(value)}",
            )
            return []
        out = []
        for i, item in enumerate(value, 1):
            t = self.table(item, f"{where} #{i}")
            if t is not None:
                out.append(t)
        return out

    def keys(
        self,
        table: Mapping[str, Any],
        allowed: set[str],
        where: str,
        hints: Mapping[str, str] | None = None,
    ) -> None:
        """A problem for each key of ``table`` not in ``allowed`` (``hints`` says why for some)."""
        for key in table:
            if key in allowed:
                continue
            if hints and key in hints:
                self.problem(where, f"unknown key {key!r}: {hints[key]}")
            else:
                self.problem(
                    where, f"unknown key {key!r}; allowed keys: {', '.join(sorted(allowed))}"
                )

    def get(
        self,
        table: Mapping[str, Any],
        key: str,
        kind: type,
        where: str,
        default: Any = None,
        *,
        required: bool = False,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """``table[key]`` if it is of type ``kind`` and passes ``check`` (which returns what is
        wrong, or None); else ``default`` and a problem (also when ``required`` and absent)."""
        if key not in table:
            if required:
                self.problem(where, f"{key!r} is required")
            return default
        value = table[key]
        # bool is an int subclass: do not let `true` pass as a number.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            quotes = kind is str and isinstance(value, int) and not isinstance(value, bool)
            hint = ' (write it in quotes, e.g. "1001")' if quotes else ""
            self.problem(where, f"{key!r} must be {kind_name(kind)}, not {type_name(value)}{hint}")
            return default
        if check is not None:
            complaint = check(value)
            if complaint:
                self.problem(where, f"{key!r} {complaint}")
                return default
        return value


def non_empty(value: str) -> str | None:
    """A ``check`` for ``Checks.get``: a string with more than blanks in it."""
    return None if value.strip() else "must not be empty"


def kind_name(kind: type) -> str:
    """How a problem names the type a value must have."""
    return {str: "a string", int: "a whole number", bool: "true or false", list: "a list"}.get(
        kind, kind.__name__
    )


def type_name(value: Any) -> str:
    """How a problem names the type a value has."""
    return {
        str: "a string",
        int: "a number",
        float: "a decimal number",
        bool: "true/false",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)

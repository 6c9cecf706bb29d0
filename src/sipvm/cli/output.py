"""What every command prints: one JSON value, an aligned table, or an error line."""

from __future__ import annotations

import json
import sys
from typing import Any

from sipvm.errors import SipvmError


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON and nothing else (``--json``)."""
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_table(header: list[str], rows: list[list[Any]]) -> None:
    """Write ``rows`` under ``header`` in left-aligned columns two spaces apart."""
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def print_error(exc: SipvmError) -> int:
    """Write ``exc`` on stderr, one ``sipvm: ...`` line per line of its text; returns its exit
    code (CONTRACT.md: 2 invalid, 3 not permitted, 4 not found, 1 anything else)."""
    for line in str(exc).splitlines() or [type(exc).__name__]:
        print(f"sipvm: {line.strip()}", file=sys.stderr)
    return exc.exit_code

"""The toll-fraud guard: where sipvm may send a caller (pure).

sipvm never dials out: a transfer is a REFER asking the PBX to connect the caller, and it may
only name an extension of the directory, the directory's operator, or an external number
that the directory file itself writes as a transfer target (a route or a menu option).
Anything a caller types (dial by extension) is checked against the extensions only.
"""

from __future__ import annotations

from sipvm.domain.model import Directory
from sipvm.domain.routing import Menu, Transfer


def transfer_destinations(directory: Directory) -> frozenset[str]:
    """Every destination a transfer may name."""
    allowed = set(directory.extensions)
    if directory.defaults.operator:
        allowed.add(directory.defaults.operator)
    for entry in directory.extensions.values():
        routing = entry.routing
        if routing is None:
            continue
        routes: list[object] = [routing.business, routing.closed]
        routes += [h.route for h in routing.holidays]
        menus: list[Menu] = [routing.menu] if routing.menu is not None else []
        menus += list(routing.submenus.values())
        for menu in menus:
            routes += list(menu.options.values())
            routes.append(menu.fallback)
        allowed.update(r.to for r in routes if isinstance(r, Transfer))
    return frozenset(allowed)


def may_transfer(directory: Directory, destination: str) -> bool:
    """Whether a transfer to ``destination`` passes the guard."""
    return destination in transfer_destinations(directory)


def dialable_extension(directory: Directory, typed: str) -> str | None:
    """What a caller typed in "dial by extension", if it is an extension of the directory."""
    return typed if typed in directory.extensions else None

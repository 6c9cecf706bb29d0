"""Which period a queue, auto receptionist or shared line group is in, and its overrides."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sipvm.domain.model import Extension
from sipvm.domain.routing import Holiday, Override, Period, Route, Routing
from sipvm.domain.schedule import next_change, period_at
from sipvm.errors import InvalidInputError, NotFoundError
from sipvm.services.directory import DirectoryService
from sipvm.storage.schedules import SqliteOverrideRepo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Now:
    """Where an entry's schedule stands at a moment."""

    ext: str
    period: Period
    holiday: Holiday | None
    override: Override
    route: Route
    until: datetime | None
    """When the period changes next on the schedule (None: never, an override holds, or not
    asked for)."""
    zone: str = "UTC"
    """The site's time zone (hours are in it)."""


class RoutingService:
    """Periods and routes of routed entries; overrides set by admins."""

    def __init__(
        self,
        directory: DirectoryService,
        overrides: SqliteOverrideRepo,
        clock: Callable[[], datetime],
    ) -> None:
        self._directory = directory
        self._overrides = overrides
        self._clock = clock

    async def now(self, ext: str, *, until: bool = False) -> Now:
        """The period, holiday and route of ``ext`` right now; with ``until``, also when the
        period changes next (a search over the coming days: for people, not for calls)."""
        entry = self._routed(ext)
        routing = entry.routing or Routing()
        override = await self._overrides.get(ext)
        zone = self._zone(entry)
        at = self._clock()
        period, holiday = period_at(routing, at, zone, override)
        change = next_change(routing, at, zone) if until and override is Override.AUTO else None
        route = routing.route_for(period, holiday)
        return Now(ext, period, holiday, override, route, change, zone.key)

    async def set_override(self, ext: str, mode: Override, *, by: str = "admin") -> Now:
        """Force ``ext`` open or closed (or back to its schedule with AUTO)."""
        self._routed(ext)
        await self._overrides.set(ext, mode, by=by, at=self._clock())
        log.info("schedule of %s set to %s by %s", ext, mode.value, by)
        return await self.now(ext, until=True)

    def _routed(self, ext: str) -> Extension:
        entry = self._directory.current.get(ext)
        if entry is None:
            raise NotFoundError(f"there is no extension {ext}; check the directory")
        if not entry.kind.has_routing:
            raise InvalidInputError(
                f"{ext} is a {entry.kind.value.replace('_', ' ')}: only call queues, auto "
                "receptionists and shared line groups have hours"
            )
        return entry

    def _zone(self, entry: Extension) -> ZoneInfo:
        site = self._directory.current.sites.get(entry.site)
        return ZoneInfo(site.timezone if site is not None else "UTC")

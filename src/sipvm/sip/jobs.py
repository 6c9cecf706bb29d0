"""Work handed to the pjsip thread from any thread, and errors made safe to hand back.

pjsua2 is called from its own thread only (``mainThreadOnly``): other threads put functions on
a :class:`JobQueue`, which the pjsip thread runs between its ``libHandleEvents`` polls. When
the pjsip thread is about to poll long (no call up), it says so with :meth:`JobQueue.doze`;
a job put on the queue meanwhile wakes it (``sip.wakeup``), so no job waits for the poll's end.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import pjsua2 as pj

log = logging.getLogger(__name__)

T = TypeVar("T")


class JobQueue:
    """Functions for the pjsip thread: ``submit`` one for its result as a future, ``post``
    one whose result nobody waits for; the pjsip thread runs them all in ``drain``."""

    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any] | None]] = (
            queue.SimpleQueue()
        )
        self._wake = wake
        self._dozing = False

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """From any thread: run ``fn`` in the pjsip thread; the future gets its result."""
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        self._rouse()
        return future

    def post(self, fn: Callable[[], object]) -> None:
        """From any thread: run ``fn`` in the pjsip thread, result unwanted."""
        self._jobs.put((fn, None))
        self._rouse()

    def doze(self) -> bool:
        """In the pjsip thread, before a long poll: True if no job waits, and then any job
        put from now on calls ``wake``; False (poll short) if one is already queued.

        The flag is set before the queue is looked at, so a job put at any moment is either
        seen here or wakes the poll.
        """
        self._dozing = True
        if self._jobs.empty():
            return True
        self._dozing = False
        return False

    def awake(self) -> None:
        """In the pjsip thread, after a long poll: jobs need not wake it any more."""
        self._dozing = False

    def _rouse(self) -> None:
        if self._dozing:
            self._dozing = False
            self._wake()

    def drain(self) -> None:
        """In the pjsip thread: run every job queued so far (a failed job fails its future
        with :func:`plain` of the error)."""
        while True:
            try:
                fn, future = self._jobs.get_nowait()
            except queue.Empty:
                return
            if future is None:
                fn()
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(plain(exc))


def plain(exc: BaseException) -> BaseException:
    """``exc`` made safe to hand to asyncio: its traceback's frames hold pjsua2 objects (a
    Call, its options, a player) that must not be released in another thread, so the frames
    are dropped here, after logging them (debug); a pjsua2 error becomes a plain one."""
    log.debug("job failed in the pjsip thread", exc_info=exc)
    if isinstance(exc, pj.Error):
        safe: BaseException = RuntimeError(f"{exc.title}: {exc.reason} (status {exc.status})")
    else:
        safe = exc
    chain: BaseException | None = exc
    seen: set[int] = set()
    while chain is not None and id(chain) not in seen:  # chained errors hold frames too
        seen.add(id(chain))
        chain.__traceback__ = None
        chain = chain.__cause__ or chain.__context__
    return safe

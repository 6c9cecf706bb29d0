"""What the commands share: the handler type and running a command over an opened store."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sipvm.app import App

#: A command: the parsed arguments in, the exit code out (``set_defaults(handler=...)``).
Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


async def with_app(args: argparse.Namespace, body: Callable[[App], Awaitable[int]]) -> int:
    """Open the store in ``args.data``, run ``body`` over it and close it again."""
    app = await App.open(args.data)
    try:
        return await body(app)
    finally:
        await app.close()

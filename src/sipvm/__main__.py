"""``python -m sipvm``: the same as the ``sipvm`` command."""

from sipvm.cli import main

raise SystemExit(main())

"""Call dialogs as plain async functions over a ``CallChannel`` (no pjsua2 here)."""

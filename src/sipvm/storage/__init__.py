"""Persistence: SQLite through aiosqlite (WAL, numbered migrations) and audio files on disk."""

"""Notifications: email and message-waiting lamps for everyone with access."""

"""Use cases: the one place where the directory, rights, storage and audio meet.

- ``directory``: apply a directory file, keep the directory in force.
- ``messages``: list inboxes and messages, play/mark-new/delete/restore/share/export by right.
- ``deposits``: turn a recording into a durable message; startup recovery; purging.
"""

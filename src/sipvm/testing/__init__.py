"""Test kit shipped with sipvm: a fake clock and a scripted fake call channel for flow tests.

The heavier rigs (tones, RTP pcaps, an RTP caller, the scripted pjsua2 peer) live in the
repository's ``tests/support/`` and are not part of the package.
"""

"""Test kit shipped with sipvm: tone generation and detection, fake call channels,
scripted peers."""

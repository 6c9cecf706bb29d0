"""Pure, synchronous core: the directory model, rights, PIN rules. No I/O here."""

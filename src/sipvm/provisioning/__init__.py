"""Directory import and export (the TOML directory file) and desk-phone templates."""

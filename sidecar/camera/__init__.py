"""camera layer (see ARCHITECTURE.md)."""

"""triggers layer (see ARCHITECTURE.md)."""

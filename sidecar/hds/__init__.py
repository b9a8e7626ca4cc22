"""hds layer (see ARCHITECTURE.md)."""

"""media layer (see ARCHITECTURE.md)."""

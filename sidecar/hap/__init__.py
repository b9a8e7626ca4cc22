"""hap layer (see ARCHITECTURE.md)."""

"""The consumer service (see ../shared/DESIGN.md)."""

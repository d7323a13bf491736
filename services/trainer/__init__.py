"""The trainer service (see ../shared/DESIGN.md)."""

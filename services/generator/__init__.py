"""The generator service (see ../shared/DESIGN.md)."""

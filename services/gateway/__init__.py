"""The gateway service (see ../shared/DESIGN.md)."""

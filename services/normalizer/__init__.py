"""The normalizer service (see ../shared/DESIGN.md)."""

"""PostgreSQL access: a pool and the ordered plain-SQL migrations."""

from shared.db.migrations import apply_migrations
from shared.db.pool import create_pool

__all__ = ["apply_migrations", "create_pool"]

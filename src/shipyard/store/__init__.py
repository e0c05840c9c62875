"""SQL adapters: SQLAlchemy Core tables, Alembic migrations and the repositories."""

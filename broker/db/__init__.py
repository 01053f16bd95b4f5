"""Database access: engine creation, table definitions and Alembic migrations."""

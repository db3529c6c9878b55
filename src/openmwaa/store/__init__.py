"""openmwaa.store: SQLAlchemy models and repositories (SQLite by default, PostgreSQL in production)."""

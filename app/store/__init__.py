"""The store: database engine and sessions, the ORM models, the Alembic migrations."""

"""Persistence: SQLAlchemy 2 async models, engines, and Alembic migrations.

Migrations are the only way the schema changes (``branchd db upgrade``); the
daemon never calls ``create_all``.
"""

from gateway.persistence.db import create_engine, session_factory
from gateway.persistence.migrate import current_revision, head_revision, upgrade

__all__ = ["create_engine", "current_revision", "head_revision", "session_factory", "upgrade"]

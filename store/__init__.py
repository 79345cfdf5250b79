"""Persistence: SQLAlchemy models, Alembic migrations and the database operations on them.

The database is the source of truth for tenants, quotas, users and jobs. Every job state change
goes through :mod:`store.jobstates` so that legal transitions are defined in exactly one place.
"""

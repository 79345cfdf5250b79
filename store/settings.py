"""Database settings, read from ``YUSHAN_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///var/yushan.db"


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUSHAN_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = 16

"""API process settings, from ``YUSHAN_*`` environment variables (pydantic-settings)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from store.settings import DEFAULT_DATABASE_URL


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YUSHAN_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = Field(default=16, ge=1, le=200)
    """Connections per API process; also the number of requests it serves at once."""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    bootstrap_token: str | None = None
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    tenant_namespace_prefix: str = "yushan-"
    default_page_size: int = 50
    policy: str = "fair+backfill"
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    kubeconfig: str | None = None
    metrics_token: str | None = None
    """When set, ``/metrics`` answers only ``Authorization: Bearer <token>`` (401 otherwise)."""
    in_cluster: bool | None = None
    """Read logs through the pod's service account. ``None`` (default): when running in a
    Kubernetes pod (``KUBERNETES_SERVICE_HOST`` set) and no ``kubeconfig`` is given."""
    session_secret: SecretStr | None = None
    """Key that signs the portal's session cookies (``/ui/``); every API replica needs the same.
    Unset: derived from ``bootstrap_token`` when there is one, else random per process (portal
    sign-ins then end when the process restarts)."""
    session_max_age_seconds: int = Field(default=12 * 3600, ge=60, le=30 * 86400)
    """How long a portal sign-in lasts (the token's own expiry and revocation still apply)."""

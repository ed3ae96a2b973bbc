"""Settings of the HTTP server only (the library's are ``assistant.settings.Settings``). Same
``SUMMIT_`` prefix: ``SUMMIT_CORS_ORIGINS``, ``SUMMIT_ADMIN_TOKEN``, ... The library settings
ignore these variables, and these ignore the library's."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUMMIT_", extra="ignore")

    # Origins allowed to call the API from a browser (CORS); [] = same origin only.
    cors_origins: list[str] = Field(default_factory=list)
    # The largest request body accepted (uploads are limited by the library's max_upload_bytes).
    max_body_bytes: int = Field(default=64_000, ge=1024)
    rate_limit_per_minute: int = Field(default=0, ge=0)  # per client IP on /api and /v1; 0 = off
    # Bearer token of the admin routes (reload, adding and deleting documents); unset = no admin routes.
    admin_token: str | None = Field(default=None, repr=False)

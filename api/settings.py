"""Settings of the HTTP server only (the library's are ``assistant.settings.Settings``). Same
``SUMMIT_`` prefix: ``SUMMIT_CORS_ORIGINS``, ``SUMMIT_ADMIN_TOKEN``, ... The library settings
ignore these variables, and these ignore the library's."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


# Suggested in the widget (SUMMIT_SUGGESTED_QUESTIONS, a JSON list); each is asked when an index is
# installed and shown only when it is answered. These are answered by the two shipped articles.
DEFAULT_SUGGESTED_QUESTIONS: list[str] = [
    "Qui co-préside le sommet ?",
    "Où se réuniront les chefs d'État ?",
    "Quels patrons de la tech sont invités ?",
    "Who co-chairs the summit?",
    "Where will the heads of state meet?",
    "Which tech leaders are invited?",
]


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUMMIT_", extra="ignore")

    # Origins allowed to call the API from a browser (CORS); [] = same origin only.
    cors_origins: list[str] = Field(default_factory=list)
    # The largest request body accepted (uploads are limited by the library's max_upload_bytes).
    max_body_bytes: int = Field(default=64_000, ge=1024)
    rate_limit_per_minute: int = Field(default=0, ge=0)  # per client IP on /api and /v1; 0 = off
    # Bearer token of the admin routes (reload, adding and deleting documents); unset = no admin routes.
    admin_token: str | None = Field(default=None, repr=False)
    # Thumbs-up/down from the widget, one JSON object per line, append-only ("" turns it off).
    feedback_file: str = "feedback/feedback.jsonl"
    # Questions the widget suggests; only those the current index answers are shown.
    suggested_questions: list[str] = Field(default_factory=lambda: list(DEFAULT_SUGGESTED_QUESTIONS))

"""HTTP API, OpenAI-compatible endpoint and chat widget of Summit Assistant (``summit serve``)."""

from .app import create_app

__all__ = ["create_app"]

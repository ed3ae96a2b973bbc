"""``summit serve``: one uvicorn worker, since the model and the index live in process memory."""

from __future__ import annotations

from assistant.settings import Settings

from .settings import ApiSettings


def run_server(settings: Settings, api_settings: ApiSettings | None = None, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the API and the widget until interrupted; the lifespan loads the assistant once.
    ``api_settings``: the server's own settings, default from the environment."""
    import uvicorn

    from .app import create_app

    shown = f"[{host}]" if ":" in host else host
    print(f"Summit Assistant on http://{shown}:{port} (widget demo at /, API docs at /docs)", flush=True)
    uvicorn.run(create_app(settings, api_settings=api_settings or ApiSettings()), host=host, port=port, log_level="info", workers=1, loop="auto", http="auto",
                # Python HTTP clients keep idle connections 5 s too: a longer server side avoids resets.
                timeout_keep_alive=30)

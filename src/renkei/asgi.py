"""ASGI entry point for uvicorn: `renkei.asgi:app` (imported once by each server process)."""

from renkei.app import create_app, freeze_startup_heap

app = create_app()
freeze_startup_heap()

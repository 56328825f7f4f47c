"""ASGI entry point for uvicorn: `renkei.asgi:app`."""

from renkei.app import create_app

app = create_app()

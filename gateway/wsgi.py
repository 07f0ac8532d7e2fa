"""WSGI entry point for gunicorn: ``gateway.wsgi:app``."""
from .app import create_app

app = create_app()

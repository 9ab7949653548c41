"""ASGI entry for servers that want a module-level app: ``uvicorn interfaces.asgi:app``."""

from interfaces.http.app import create_app

app = create_app()

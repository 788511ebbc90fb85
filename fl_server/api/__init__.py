"""The coordinator's HTTP API: `create_app(ApiSettings(...))` returns the FastAPI app."""

from fl_server.api.app import create_app
from fl_server.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]

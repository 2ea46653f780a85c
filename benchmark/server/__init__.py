"""The server: one FastAPI app that mounts the results API (slices of the site's data), the
submission router and the built static site. Public face: ``create_app``; `membench serve`
runs it with uvicorn."""

from .app import create_app

__all__ = ["create_app"]

"""The HTTP service: an Auth0-compatible Management API over the service's database.

``create_app`` (runtime/api/app.py) builds the FastAPI app; ``phone-actions serve`` runs it
with uvicorn. Nothing is imported here, so that ``runtime.api.tokens`` and
``runtime.api.scopes`` stay cheap for the CLI (FastAPI is imported only by the app).
"""

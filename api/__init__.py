"""Stencil's HTTP API: submit manifests, poll by request id, control, webhooks, signed files.

``create_app`` (api/app.py) builds the FastAPI application; ``stencil serve`` runs it with uvicorn.
Routes are thin: they call the library functions the CLI uses.
"""

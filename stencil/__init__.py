"""Stencil: bulk image generation with Gemini image models, submit-and-poll by request id."""

__version__ = "0.1.0"

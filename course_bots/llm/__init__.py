"""Answer backends (local model, OpenAI-compatible servers, extractive) and our own model server.

Imports neither Flask nor SQLAlchemy, and torch/transformers only when a local model is used.
"""

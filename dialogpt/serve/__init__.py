"""Serving: the OpenAI-compatible HTTP server and its web pages."""

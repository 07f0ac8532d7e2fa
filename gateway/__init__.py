"""codex-gateway: an OpenAI-compatible gateway that keeps prompt-cache continuity."""

__version__ = "0.1.0"

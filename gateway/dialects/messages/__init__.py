"""The Anthropic Messages dialect (``/v1/messages``): Claude Code and the
Anthropic SDKs, served from the same Responses upstream as every other path."""

"""gateway.upstream
~~~~~~~~~~~~~~~~~~~
Upstream profiles: where a request goes and what its backend accepts.

A profile turns a normalised Responses request into the exact body and
headers one backend wants (the ChatGPT Codex backend or the OpenAI API), and
reads that backend's errors. Everything backend-specific lives here.
"""
from __future__ import annotations

from .base import Profile, UpstreamFailure, parse_failure
from .codex import CodexProfile
from .openai import OpenAIProfile


def profiles_for(config) -> dict[str, Profile]:
    """One profile per account kind, built once per worker."""
    return {"codex": CodexProfile(config.upstream), "openai": OpenAIProfile(config.upstream)}


__all__ = ["Profile", "UpstreamFailure", "parse_failure", "profiles_for"]

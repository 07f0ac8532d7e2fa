"""gateway.upstream
~~~~~~~~~~~~~~~~~~~
Upstream profiles: where a request goes and what its backend accepts.

A profile turns a normalised Responses request into the exact body and
headers one backend wants (the ChatGPT Codex backend or the OpenAI API), and
says what that backend's answer headers mean. :class:`.wire.Wire` sends (over
:mod:`.ws` or :mod:`.http`) and answers one :class:`.answer.Answer` either way.
"""
from __future__ import annotations

from .base import Profile
from .codex import CodexProfile
from .identity import identity_for
from .openai import OpenAIProfile


def profiles_for(config) -> dict[str, Profile]:
    """One profile per account kind, built once per worker."""
    return {"codex": CodexProfile(config.upstream, identity_for(config)),
            "openai": OpenAIProfile(config.upstream)}


__all__ = ["Profile", "profiles_for"]

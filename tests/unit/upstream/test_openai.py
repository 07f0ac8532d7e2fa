"""The OpenAI API profile: body rules, headers, parameters learned as unsupported."""
from __future__ import annotations

from gateway import config as config_mod
from gateway.continuity import Continuity
from gateway.upstream import profiles_for
from gateway.accounts.pool import Credentials

CFG = config_mod.load(env={})
PROFILES = profiles_for(CFG)
CONT = Continuity("K", "conversation")


def test_openai_profile_keeps_retention_and_has_no_session_header():
    out, dropped = PROFILES["openai"].prepare(
        {"model": "m", "input": [], "prompt_cache_retention": "24h"}, CONT)
    assert out["prompt_cache_retention"] == "24h" and dropped == []
    headers = PROFILES["openai"].headers(Credentials("sk"), {}, CONT)
    assert "session_id" not in headers and headers["Authorization"] == "Bearer sk"


def test_learned_unsupported_param_is_dropped_next_time():
    prof = profiles_for(CFG)["openai"]
    prof.learn_unsupported("service_tier")
    out, dropped = prof.prepare({"model": "m", "input": [], "service_tier": "flex"}, CONT)
    assert "service_tier" not in out and dropped == ["service_tier"]

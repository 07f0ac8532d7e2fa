"""A conversation that moves carries nothing the new account cannot read: the fake
backend refuses reasoning another account encrypted (invalid_encrypted_content), as
the real one does. In process: the executor's strip-and-retry paths and the reasons."""
from __future__ import annotations

from gateway import state
from tests.support import CLIENT_KEY, LONG_SYSTEM, quota_reading


def responses_turn(gw, items: list, n: int):
    items.append({"type": "message", "role": "user",
                  "content": [{"type": "input_text", "text": f"moving turn {n}"}]})
    resp = gw.post("/v1/responses", {"model": "gpt-5-codex", "instructions": LONG_SYSTEM,
                                     "input": items, "reasoning": {"effort": "low"}})
    if resp.status_code == 200:
        items += resp.get_json()["output"]
    return resp


def refusals(upstream) -> int:
    return sum(1 for r in upstream.requests if r["status"] == 400)


def health(gw):
    return state.open_state(gw.config).health


def near_the_mark(gw) -> None:
    """Both accounts at 86 %: one more step of headroom is the mark itself."""
    for account in ("acct-a", "acct-b"):
        health(gw).record_rate_limits(f"codex-{account}", quota_reading(86))


def test_a_conversation_moved_by_the_mark_leaves_the_old_reasoning_out(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    near_the_mark(gw)
    items: list = []
    assert responses_turn(gw, items, 0).status_code == 200
    old = upstream.requests[-1]["account"]
    assert any(i["type"] == "reasoning" and i["encrypted_content"].endswith(old) for i in items)
    health(gw).record_rate_limits(f"codex-{old}", quota_reading(95))  # above the mark
    for n in (1, 2):
        assert responses_turn(gw, items, n).status_code == 200
        assert upstream.requests[-1]["account"] != old
    assert refusals(upstream) == 0  # left out before the first request, not after a refusal


def test_a_refused_reasoning_is_retried_without_it_once_per_conversation(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    items: list = []
    assert responses_turn(gw, items, 0).status_code == 200
    home = upstream.requests[-1]["account"]
    # Its account is limited for a moment: the next turn fails over (its reasoning left
    # out); then the account is back and the conversation with it, carrying reasoning
    # the other account encrypted, which its account refuses once.
    upstream.inject("http_429", account=home, retry_after=60)
    assert responses_turn(gw, items, 1).status_code == 200
    away = upstream.requests[-1]["account"]
    assert away != home and refusals(upstream) == 0
    health(gw).clear(f"codex-{home}")
    resp = responses_turn(gw, items, 2)
    assert resp.status_code == 200 and upstream.requests[-1]["account"] == home
    assert refusals(upstream) == 1
    assert upstream.requests[-2]["status"] == 400  # refused, then sent again without it
    assert not any(i.get("type") == "reasoning" for i in upstream.requests[-1]["body"]["input"])
    assert responses_turn(gw, items, 3).status_code == 200
    assert refusals(upstream) == 1  # known now: left out at once


def moves_without_a_refusal(gw, upstream, turn) -> None:
    """*turn(n)* sends a conversation's turn *n* (its history replayed); after the
    first, its account goes above the mark and the next turn is served elsewhere,
    its reasoning signatures from the old account left out before any refusal."""
    near_the_mark(gw)
    turn(0)
    old = upstream.requests[-1]["account"]
    health(gw).record_rate_limits(f"codex-{old}", quota_reading(95))
    turn(1)
    assert upstream.requests[-1]["account"] != old and refusals(upstream) == 0


def test_claude_code_signatures_of_the_old_account_are_left_out(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    messages: list = []

    def turn(n: int) -> None:
        messages.append({"role": "user", "content": f"moving turn {n}"})
        resp = gw.post("/v1/messages", {
            "model": "claude-sonnet-4-5", "max_tokens": 512, "system": LONG_SYSTEM,
            "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": messages},
            headers={"anthropic-version": "2023-06-01"})
        assert resp.status_code == 200, resp.get_data()
        content = resp.get_json()["content"]
        assert any(b["type"] == "thinking" and b.get("signature") for b in content)
        messages.append({"role": "assistant", "content": content})

    moves_without_a_refusal(gw, upstream, turn)


def test_gemini_thought_signatures_of_the_old_account_are_left_out(make_client, upstream):
    gw = make_client(accounts=("acct-a", "acct-b"))
    contents: list = []

    def turn(n: int) -> None:
        contents.append({"role": "user", "parts": [{"text": f"moving turn {n}"}]})
        resp = gw.post("/v1beta/models/gemini-2.5-pro:generateContent", {
            "contents": contents, "systemInstruction": {"parts": [{"text": LONG_SYSTEM}]},
            "generationConfig": {"thinkingConfig": {"includeThoughts": True}}},
            headers={"x-goog-api-key": CLIENT_KEY}, key=None)
        assert resp.status_code == 200, resp.get_data()
        content = resp.get_json()["candidates"][0]["content"]
        assert any(p.get("thoughtSignature") for p in content["parts"])
        contents.append(content)

    moves_without_a_refusal(gw, upstream, turn)

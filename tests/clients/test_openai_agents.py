"""The OpenAI Agents SDK (``openai-agents``, pinned in the test extra) chaining runs with
``previous_response_id``, a tool call in the middle, through a real gunicorn."""
from __future__ import annotations

import asyncio

import openai
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

from tests.support import CLIENT_KEY, LONG_SYSTEM

CALLS: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    CALLS.append(city)
    return f"18C and sunny in {city}"


def test_agents_sdk_chains_runs_with_previous_response_id(gateway, fresh):
    set_tracing_disabled(True)  # no trace export (nothing leaves 127.0.0.1)
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=CLIENT_KEY)
    agent = Agent(name="helper", instructions=LONG_SYSTEM, tools=[get_weather],
                  model=OpenAIResponsesModel(model="gpt-5-codex", openai_client=client))

    async def conversation():
        first = await Runner.run(agent, "[[say:Hi, I am ready.]] hello")
        second = await Runner.run(agent, 'Weather? [[call:get_weather {"city":"Paris"}]]',
                                  previous_response_id=first.last_response_id)
        third = await Runner.run(agent, "[[say:Goodbye.]] thanks",
                                 previous_response_id=second.last_response_id)
        return first, second, third

    first, second, third = asyncio.run(conversation())
    assert first.final_output == "Hi, I am ready."
    assert second.final_output == "Tool result was: 18C and sunny in Paris" and CALLS == ["Paris"]
    assert third.final_output == "Goodbye."
    sent = [r for r in fresh.requests if r["status"] == 200]
    assert len(sent) == 4  # the tool round trip is two requests
    assert all("previous_response_id" not in r["body"] for r in sent)
    # Every turn reached the upstream as the whole conversation so far.
    assert [len(r["body"]["input"]) for r in sent] == [1, 3, 5, 7]
    assert [i.get("type", "message") for i in sent[-1]["body"]["input"]][2:5] == [
        "message", "function_call", "function_call_output"]
    assert len({(r["body"]["prompt_cache_key"], r["headers"]["session_id"]) for r in sent}) == 1
    assert all(r["cached_tokens"] >= 1024 for r in sent[1:])

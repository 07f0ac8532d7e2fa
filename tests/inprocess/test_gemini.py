"""The Gemini dialect through the app: Gemini CLI's captured requests replayed, the routes,
the key in ``x-goog-api-key`` or ``?key=``, and errors in Google's shape."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import CLIENT_KEY

CAPTURE = Path(__file__).resolve().parents[1] / "fixtures" / "gemini-cli-0.61-session.json"
KEY = {"x-goog-api-key": CLIENT_KEY}
HI = {"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}
HELLO = "Hello from the fake upstream."
GENERATE = "/v1beta/models/gemini-2.5-pro:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def _sse(resp) -> list[dict]:
    text = resp.get_data(as_text=True)
    return [json.loads(line[6:]) for line in text.split("\r\n\r\n") if line.startswith("data: ")]


def _text(chunks) -> str:
    return "".join(p.get("text", "") for c in chunks
                   for p in c["candidates"][0]["content"]["parts"] if not p.get("thought"))


def test_gemini_cli_capture_replayed(make_client, upstream):
    """The 8 requests Gemini CLI 0.61.0 sent in a recorded session (tests/fixtures), as
    it sent them: router calls, turns, a tool round trip, two --resume turns, a -m run.

    Recorded on 127.0.0.1 with the real CLI (the settings of docs/clients/gemini-cli.md)
    against a small recorder that answered like Gemini: echo text, a ``read_file`` call
    carrying the recorder's own thoughtSignature ``SIG-call``, a router score of 100.
    The key is replaced by ``ck-test``; everything else is byte for byte."""
    gw = make_client()
    capture = json.loads(CAPTURE.read_text())
    answers = []
    for req in capture:
        headers = {k: v for k, v in req["headers"].items()
                   if k.lower() in ("user-agent", "x-goog-api-client", "content-type")}
        resp = gw.post(req["path"], req["body"], headers={**headers, **KEY}, key=None)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        answers.append(resp)
    records = upstream.requests
    assert len(records) == len(capture) == 8
    routers = [n for n, r in enumerate(capture) if ":generateContent" in r["path"]]
    mains = [n for n in range(7) if n not in routers]
    # The router: small model, a JSON schema answer it can parse; the turns: main model.
    assert [records[n]["body"]["model"] for n in routers] == ["gpt-5.4-mini"] * 3
    assert [records[n]["body"]["model"] for n in mains] == ["gpt-5.5"] * 4
    routing = json.loads(_text([answers[routers[0]].get_json()]))
    assert set(routing) == {"complexity_reasoning", "complexity_score"}
    assert records[routers[0]]["body"]["text"]["format"]["schema"]["type"] == "object"
    # One envelope for the session's turns, another for the router, never mixed.
    keys = {records[n]["body"]["prompt_cache_key"] for n in mains}
    assert len(keys) == 1 and keys.isdisjoint(records[n]["body"]["prompt_cache_key"]
                                              for n in routers)
    assert [records[n]["cached_tokens"] > 0 for n in mains] == [False, True, True, True]
    # Every turn's answer is a stream Gemini CLI accepts: text, then a finish reason.
    for n in mains:
        chunks = _sse(answers[n])
        assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
        assert chunks[-1]["usageMetadata"]["cachedContentTokenCount"] == \
            records[n]["cached_tokens"]
    # What was dropped is said: topK always, temperature and topP where the Codex backend
    # refuses them (in the client's own names); the recorder's own signature (not ours);
    # the function response Gemini CLI repeats after --resume.
    assert answers[1].headers["x-gateway-dropped-params"].split(",") == [
        "generationConfig.topK", "generationConfig.temperature", "generationConfig.topP"]
    assert "contents.parts.thoughtSignature" in answers[4].headers["x-gateway-dropped-params"]
    assert "contents.parts.functionResponse.duplicate" in \
        answers[6].headers["x-gateway-dropped-params"]
    assert [i["type"] for i in records[6]["body"]["input"]].count("function_call_output") == 1
    # 8 built-in tools, parametersJsonSchema as the parameters.
    tools = records[1]["body"]["tools"]
    assert len(tools) == 8 and tools[2]["name"] == "read_file"
    assert tools[2]["parameters"]["required"] == ["file_path"]
    # -m gemini-2.5-pro: thinkingBudget 8192 -> medium, thoughts shown.
    assert records[7]["body"]["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert any(p.get("thought") for c in _sse(answers[7])
               for p in c["candidates"][0]["content"]["parts"])


def test_generate_stream_and_json_array(make_client, upstream, caplog):
    gw = make_client()
    caplog.set_level("INFO", logger="gateway.request")
    answer = gw.post(GENERATE, HI, headers=KEY, key=None).get_json()
    assert answer["candidates"][0]["content"]["parts"] == [{"text": HELLO}]
    assert answer["modelVersion"] == "gemini-2.5-pro"
    assert "model=gemini-2.5-pro->gpt-5.5" in [r for r in caplog.records if r.name == "gateway.request"][-1].getMessage()
    resp = gw.post(STREAM + "?alt=sse", HI, headers=KEY, key=None)
    assert resp.mimetype == "text/event-stream" and _text(_sse(resp)) == HELLO
    assert "model=gemini-2.5-flash->gpt-5.4-mini" in [r for r in caplog.records if r.name == "gateway.request"][-1].getMessage()
    resp = gw.post(STREAM, HI, headers=KEY, key=None)
    assert resp.mimetype == "application/json" and _text(resp.get_json()) == HELLO
    # the same under /v1 (google-genai's default), the key as ?key= (never in the log line)
    resp = gw.post(f"/v1/models/gemini-2.5-pro:generateContent?key={CLIENT_KEY}", HI, key=None)
    assert resp.status_code == 200 and _text([resp.get_json()]) == HELLO
    assert CLIENT_KEY not in caplog.text
    assert len(upstream.requests) == 4


def test_count_tokens_is_an_estimate_without_an_upstream_call(make_client, upstream):
    gw = make_client()
    small = gw.post("/v1beta/models/gemini-2.5-pro:countTokens", HI, headers=KEY, key=None)
    big = gw.post("/v1beta/models/gemini-2.5-pro:countTokens",
                  {"generateContentRequest": {**HI, "systemInstruction": {
                      "parts": [{"text": "x" * 4000}]}}}, headers=KEY, key=None)
    assert 0 < small.get_json()["totalTokens"] < big.get_json()["totalTokens"]
    assert upstream.requests == []


def test_model_routes(make_client):
    gw = make_client()
    listed = gw.client.get("/v1beta/models", headers=KEY).get_json()["models"]
    assert {"models/gpt-5.5", "models/gpt-5.4-mini"} <= {m["name"] for m in listed}
    assert all("generateContent" in m["supportedGenerationMethods"] for m in listed)
    # GET /v1/models: Google's list for a Google client, OpenAI's for everyone else
    assert "models" in gw.client.get(f"/v1/models?key={CLIENT_KEY}").get_json()
    assert "data" in gw.client.get(
        "/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"}).get_json()
    one = gw.client.get("/v1beta/models/gemini-3.1-pro-preview", headers=KEY).get_json()
    assert one["name"] == "models/gemini-3.1-pro-preview" and one["baseModelId"] == "gpt-5.5"
    assert one["inputTokenLimit"] > 0
    flash = gw.client.get("/v1/models/gemini-2.5-flash-lite", headers=KEY).get_json()
    assert flash["baseModelId"] == "gpt-5.4-mini"


def test_gemini_aliases_follow_the_configured_tiers(make_client, upstream):
    gw = make_client(models_main_model="gpt-5.4", models_small_model="gpt-5.1-codex-mini")
    gw.post("/v1beta/models/gemini-3.1-pro-preview:generateContent", HI, headers=KEY, key=None)
    gw.post("/v1beta/models/gemini-3.5-flash-lite:generateContent", HI, headers=KEY, key=None)
    assert [r["body"]["model"] for r in upstream.requests] == ["gpt-5.4", "gpt-5.1-codex-mini"]


@pytest.mark.parametrize("path, body, headers, status, name", [
    (GENERATE, HI, {}, 401, "UNAUTHENTICATED"),
    (GENERATE, HI, {"x-goog-api-key": "wrong"}, 401, "UNAUTHENTICATED"),
    (GENERATE + "?key=wrong", HI, {}, 401, "UNAUTHENTICATED"),
    ("/v1beta/models/no-such-model:generateContent", HI, KEY, 404, "NOT_FOUND"),
    ("/v1beta/models/gemini-2.5-pro:embedContent", HI, KEY, 404, "NOT_FOUND"),
    ("/v1beta/models/nope", None, KEY, 404, "NOT_FOUND"),
    (GENERATE, b"{not json", KEY, 400, "INVALID_ARGUMENT"),
    (GENERATE, {"contents": []}, KEY, 400, "INVALID_ARGUMENT"),
    (GENERATE, {"contents": [{"role": "tool", "parts": []}]}, KEY, 400, "INVALID_ARGUMENT"),
    ("/v1beta/nothing-here", HI, KEY, 404, "NOT_FOUND"),
])
def test_errors_in_googles_shape(make_client, upstream, path, body, headers, status, name):
    gw = make_client()
    if body is None:
        resp = gw.client.get(path, headers=headers)
    elif isinstance(body, bytes):
        resp = gw.post(path, raw=body, headers=headers, key=None)
    else:
        resp = gw.post(path, body, headers=headers, key=None)
    error = resp.get_json()["error"]
    assert resp.status_code == error["code"] == status and error["status"] == name
    assert error["details"][0]["domain"] == "codex-gateway"
    assert CLIENT_KEY not in resp.get_data(as_text=True)
    assert upstream.requests == []


def test_upstream_rate_limit_is_resource_exhausted_with_retry_info(make_client, upstream):
    gw = make_client()
    upstream.inject("http_429")
    resp = gw.post(GENERATE, HI, headers=KEY, key=None)
    error = resp.get_json()["error"]
    assert resp.status_code == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert error["details"][-1]["@type"] == "type.googleapis.com/google.rpc.RetryInfo"
    assert error["details"][-1]["retryDelay"].endswith("s")


@pytest.mark.parametrize("fault, reason", [("truncate", "STREAM_TRUNCATED"),
                                           ("reset_mid_stream", "UPSTREAM_CONNECTION_LOST")])
def test_failure_mid_stream_is_an_error_line(make_client, upstream, fault, reason):
    gw = make_client()
    upstream.inject(fault)
    resp = gw.post(STREAM + "?alt=sse", HI, headers=KEY, key=None)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and _text(_sse(resp))  # the answer had started
    error = json.loads(text.rstrip("\n").rsplit("\n", 1)[-1])["error"]
    assert error["code"] == 502 and error["status"] == "UNAVAILABLE"
    assert error["details"][0]["reason"] == reason

"""The open upstream answer: what priming reads is never lost."""
from __future__ import annotations

from gateway.record import Outcome, RequestRecord
from gateway.relay import EOF
from gateway.sse import SSEParser, encode
from gateway.stream import UpstreamStream


class Scripted:
    """An upstream answer's reader whose reads (SSE bytes) are given in advance
    (None: a silent wait)."""

    def __init__(self, reads):
        self.reads = list(reads)
        self.closed = False
        self.parser = SSEParser()

    def next(self, timeout):
        read = self.reads.pop(0) if self.reads else EOF
        return self.parser.feed(read) if isinstance(read, bytes) else read

    def close(self):
        self.closed = True


def frame(kind, **data):
    return encode(dict(data, type=kind), kind)


COMPLETED = frame("response.completed", response={"usage": {"input_tokens": 3,
                                                            "output_tokens": 2}})


def test_events_read_with_the_start_of_the_answer_are_all_handed_on():
    """An upstream may pack the start, the text and the end into one read."""
    one_read = (frame("response.created") + frame("response.output_text.delta", delta="hi")
                + frame("response.output_text.delta", delta="!") + COMPLETED)
    resp = Scripted([one_read])
    stream = UpstreamStream(resp, RequestRecord("responses"), read_timeout=5, keepalive=1,
                            timed=True, headers={})
    assert stream.prime(1.0) is None
    kinds = [e.type for e in stream.events() if e is not None]
    assert kinds == ["response.created", "response.output_text.delta",
                     "response.output_text.delta", "response.completed"]
    stream.close()
    assert stream.outcome is Outcome.COMPLETED and resp.closed


def test_an_untimed_answer_silent_for_the_read_timeout_ends_with_an_error_event():
    resp = Scripted([None])
    stream = UpstreamStream(resp, RequestRecord("responses"), read_timeout=5, keepalive=0,
                            timed=False, headers={})
    failure = stream.prime(1.0)
    assert failure is not None and failure.code == "upstream_timeout"


def _stream(reads, **kw):
    return UpstreamStream(Scripted(reads), RequestRecord("responses"), read_timeout=5,
                          keepalive=1, timed=True, headers={}, **kw)


def test_what_is_read_together_is_written_together():
    """One upstream read, one write to the client, in both renderers."""
    from gateway.dialects import translator
    from gateway.dialects.chat.events import ChatStreamTranslator
    from gateway.dialects.responses import events

    deltas = [frame("response.output_text.delta", delta=t, output_index=0, content_index=0)
              for t in ("a", "b", "c")]
    reads = [frame("response.created", response={"id": "r1"}), b"".join(deltas), COMPLETED]
    out = list(events.frames(_stream(reads)))
    assert out == reads

    chat = list(translator.frames(_stream(reads),
                                  ChatStreamTranslator("gpt-5-codex", include_usage=False)))
    assert len(chat) <= len(reads) + 1  # a write per read at most, and the closing [DONE]
    assert all(b'"content":"%s"' % t in b"".join(chat) for t in (b"a", b"b", b"c"))


def test_hidden_events_never_reach_a_renderer_and_do_not_start_the_answer():
    """The account's quota (codex.rate_limits) for a key that may not see it: dropped
    whether it comes first, mid-answer or in the last bytes; priming still waits for
    the answer to start (a failure after it can fail over)."""
    quota = frame("codex.rate_limits", rate_limits={"primary": {"used_percent": 12.0}})
    failed = frame("response.failed", response={"error": {"code": "server_error",
                                                          "message": "boom"}})
    stream = _stream([quota + frame("response.created"), failed],
                     hidden=frozenset({"codex.rate_limits"}))
    assert stream.prime(1.0).code == "server_error"
    stream = _stream([quota + frame("response.created"), frame("response.output_text.delta",
                      delta="hi") + quota, COMPLETED + quota[:-1]],
                     hidden=frozenset({"codex.rate_limits"}))
    assert stream.prime(1.0) is None
    kinds = [e.type for e in stream.events() if e is not None]
    assert kinds == ["response.created", "response.output_text.delta", "response.completed"]
    shown = _stream([quota + frame("response.created") + COMPLETED])
    assert [e.type for e in shown.events() if e is not None][0] == "codex.rate_limits"

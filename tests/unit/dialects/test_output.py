"""What every dialect reads of a Responses answer (gateway.dialects.output), and the
reasoning events streamed the same way by each dialect's translator."""
from __future__ import annotations

import pytest

from gateway.dialects import output
from gateway.dialects.chat.events import ChatStreamTranslator
from gateway.dialects.gemini.events import GeminiStreamTranslator
from gateway.dialects.messages.events import MessagesStreamTranslator
from gateway.sse import make_event


def test_items_are_the_objects_of_a_final_output():
    message = {"type": "message", "content": []}
    assert output.items({"output": [message, "junk", None, 3]}) == [message]
    assert output.items({"output": "junk"}) == output.items({}) == []


def test_a_reasoning_items_text_is_its_summary_else_its_content():
    summary = [{"type": "summary_text", "text": "One."}, {"type": "summary_text", "text": ""},
               {"type": "summary_text", "text": "Two."}, "junk"]
    content = [{"type": "reasoning_text", "text": "Raw."}]
    assert output.reasoning_parts({"summary": summary}) == ["One.", "", "Two."]
    assert output.reasoning_text({"summary": summary, "content": content}) == "One.\n\nTwo."
    assert output.reasoning_text({"summary": [], "content": content}) == "Raw."
    assert output.reasoning_text({}) == ""


def test_a_message_items_text_says_whether_it_was_refused():
    item = {"content": [{"type": "output_text", "text": "Hi. "}, {"type": "refusal",
                                                                 "refusal": "No."}, "junk"]}
    assert output.message_text(item) == ("Hi. No.", True)
    assert output.message_text({"content": [{"type": "output_text", "text": "Hi."}]}) == \
        ("Hi.", False)


def test_the_reasoning_handlers_name_each_events_part_field():
    seen = []
    handlers = output.reasoning_handlers(lambda tr, data, key: seen.append((tr, key)))
    for kind, handler in handlers.items():
        handler("tr", {"type": kind})
    assert seen == [("tr", "summary_index"), ("tr", "content_index")]


TRANSLATORS = {
    "chat": lambda: ChatStreamTranslator("gpt-5", include_usage=False),
    "messages": lambda: MessagesStreamTranslator("gpt-5", thinking=True),
    "gemini": lambda: GeminiStreamTranslator("gemini-2.5-pro", thoughts=True),
}


@pytest.mark.parametrize("dialect", sorted(TRANSLATORS))
@pytest.mark.parametrize("kind", sorted(output.REASONING_DELTAS))
def test_every_dialect_streams_both_reasoning_events_parts_a_blank_line_apart(dialect, kind):
    key = output.REASONING_DELTAS[kind]
    tr = TRANSLATORS[dialect]()
    where = {"item_id": "rs_1", "output_index": 0}
    frames = []
    for part, delta in ((0, "One."), (0, " more"), (1, "Two.")):
        frames += tr.feed(make_event({"type": kind, **where, key: part, "delta": delta}))
    sent = b"".join(frames)
    assert b"One." in sent and b'" more"' in sent and b'"\\n\\nTwo."' in sent

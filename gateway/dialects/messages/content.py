"""gateway.dialects.messages.content
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Messages content blocks -> Responses input items and parts.

=============================  ==================================================
``system`` (string or blocks)  one leading ``developer`` message (Codex CLI's own
                               layout; ``instructions`` stays ``""``); the
                               ``x-anthropic-billing-header:`` block is dropped:
                               it changes with the first prompt and would split
                               the cache between sessions
``messages`` role ``system``   a ``developer`` message at that position (Claude
                               Code sends one, sometimes last)
user/assistant ``text``        ``input_text`` / ``output_text`` parts
``image`` (base64, url, file)  ``input_image`` (data URL, URL, ``file_id``)
``document``                   PDF/base64, URL, file -> ``input_file``; plain
                               text and content sources -> ``input_text``
``search_result``              ``input_text`` (title, source, text)
``tool_use``                   ``function_call`` (``call_id`` = id, compact JSON
                               arguments); a missing id gets a stable hash
``tool_result``                ``function_call_output`` matched by id, put in
                               call order (Claude Code sends parallel results in
                               completion order); ``is_error`` becomes an
                               ``Error: `` prefix; a result for an unknown call
                               becomes user text (the upstream would refuse it)
``thinking`` with a gateway    a ``reasoning`` item (id, ``encrypted_content``,
signature                      the block's text as summary); other thinking
                               blocks and ``redacted_thinking`` are dropped
``cache_control``, citations   ignored (the upstream caches by prefix on its own)
=============================  ==================================================

Unknown blocks are dropped and reported (``content.<type>``), never a 400.
"""
from __future__ import annotations

from gateway.dialects.dropped import UNSAFE
from gateway.dialects.tools import arguments_json, stable_call_id

from .signature import decode_signature
from .translation import Translation

BILLING_PREFIX = "x-anthropic-billing-header:"


def system_item(t: Translation, system) -> dict | None:
    """``system`` -> one developer message, without the billing header."""
    if system is None:
        return None
    if isinstance(system, str):
        text = _strip_billing_line(system)
        return message("developer", [{"type": "input_text", "text": text}]) if text else None
    if not isinstance(system, list):
        t.drop("system")
        return None
    parts = []
    for block in system:
        text = block_text(block)
        if text is None:
            t.drop_block(block)
        elif text and not text.lstrip().startswith(BILLING_PREFIX):
            parts.append({"type": "input_text", "text": text})
    return message("developer", parts) if parts else None


def developer(t: Translation, content, items: list) -> None:
    """A ``system``/``developer`` message: text only (other blocks are reported)."""
    if isinstance(content, str):
        append(items, "developer", [{"type": "input_text", "text": content}] if content else [])
        return
    parts = []
    for block in content:
        text = block_text(block)
        if text is not None:
            if text:
                parts.append({"type": "input_text", "text": text})
        else:
            t.drop_block(block)
    append(items, "developer", parts)


def user(t: Translation, content, items: list) -> None:
    if isinstance(content, str):
        append(items, "user", [{"type": "input_text", "text": content}] if content else [])
        return
    results: list[dict] = []
    parts: list[dict] = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            call_id = block.get("tool_use_id")
            output = _tool_output(t, block)
            if isinstance(call_id, str) and call_id in t.calls:
                results.append({"type": "function_call_output", "call_id": call_id,
                                "output": output})
            else:  # no such call: the upstream would refuse the output
                parts.extend(_orphan_parts(call_id, output))
            continue
        part = _user_part(t, block)
        if part is not None:
            parts.extend(part)
    # Results in call order: parallel results arrive in completion order,
    # and the upstream reads them best right after their calls.
    results.sort(key=lambda r: t.calls[r["call_id"]])
    items.extend(results)
    append(items, "user", parts)


def assistant(t: Translation, content, i: int, items: list) -> None:
    if isinstance(content, str):
        append(items, "assistant", [{"type": "output_text", "text": content}] if content else [])
        return
    parts: list[dict] = []

    def flush() -> None:
        append(items, "assistant", list(parts))
        parts.clear()

    for j, block in enumerate(content):
        text = block_text(block)
        if text is not None:
            if text:
                parts.append({"type": "output_text", "text": text})
            continue
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_use":
            name = block.get("name")
            if not isinstance(name, str) or not name:
                t.drop("content.tool_use")
                continue
            args = arguments_json(block.get("input"))
            call_id = block.get("id")
            if not isinstance(call_id, str) or not call_id:
                call_id = stable_call_id(i, j, name, args)
            flush()
            t.calls.setdefault(call_id, len(t.calls))
            items.append({"type": "function_call", "call_id": call_id,
                          "name": t.names(name), "arguments": args})
        elif kind == "thinking":
            item = reasoning(block)
            if item is None:
                t.drop("content.thinking")
                continue
            flush()
            items.append(item)
        else:
            t.drop_block(block)
    flush()


def reasoning(block: dict) -> dict | None:
    """A thinking block the gateway signed -> the reasoning item it came from."""
    decoded = decode_signature(block.get("signature"))
    if decoded is None or "encrypted_content" not in decoded:
        return None  # not ours, or nothing the upstream could replay
    item = {"type": "reasoning"}
    if "id" in decoded:
        item["id"] = decoded["id"]
    text = block.get("thinking")
    item["summary"] = [{"type": "summary_text", "text": text}] if isinstance(text, str) and text else []
    item["encrypted_content"] = decoded["encrypted_content"]
    return item


def block_text(block) -> str | None:
    """The text of a string or ``text`` block; None for any other block."""
    if isinstance(block, str):
        return block
    if isinstance(block, dict) and block.get("type") == "text" \
            and isinstance(block.get("text"), str):
        return block["text"]
    return None


def message(role: str, parts: list) -> dict:
    return {"type": "message", "role": role, "content": parts}


def append(items: list, role: str, parts: list) -> None:
    if parts:  # an empty part list carries nothing and the upstream may refuse it
        items.append(message(role, parts))


def _user_part(t: Translation, block) -> list[dict] | None:
    """One user content block -> Responses input parts (None: dropped)."""
    if isinstance(block, str):
        return [{"type": "input_text", "text": block}] if block else []
    if not isinstance(block, dict):
        t.drop_block(block)
        return None
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            t.drop_block(block)
            return None
        return [{"type": "input_text", "text": text}] if text else []
    if kind == "image":
        part = _image(t, block)
        return [part] if part is not None else None
    if kind == "document":
        return _document(t, block)
    if kind == "search_result":
        return _search_result(block)
    if kind == "tool_reference":
        name = block.get("tool_name")
        if isinstance(name, str) and name:
            return [{"type": "input_text", "text": f"Tool {name} is now available."}]
    t.drop_block(block)
    return None


def _user_parts(t: Translation, blocks: list) -> list[dict]:
    parts = []
    for block in blocks:
        mapped = _user_part(t, block)
        if mapped:
            parts.extend(mapped)
    return parts


def _image(t: Translation, block: dict) -> dict | None:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source.get("data"), str):
        media = source.get("media_type") if isinstance(source.get("media_type"), str) else "image/png"
        url = f"data:{media};base64,{source['data']}"
        return {"type": "input_image", "image_url": url, "detail": "auto"}
    if kind == "url" and isinstance(source.get("url"), str) and source["url"]:
        return {"type": "input_image", "image_url": source["url"], "detail": "auto"}
    if kind == "file" and isinstance(source.get("file_id"), str):
        return {"type": "input_image", "file_id": source["file_id"], "detail": "auto"}
    t.drop("content.image.source")
    return None


def _document(t: Translation, block: dict) -> list[dict] | None:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    title = block.get("title") if isinstance(block.get("title"), str) else None
    if kind == "base64" and isinstance(source.get("data"), str):
        media = source.get("media_type") if isinstance(source.get("media_type"), str) \
            else "application/pdf"
        return [{"type": "input_file", "filename": title or _filename(media),
                 "file_data": f"data:{media};base64,{source['data']}"}]
    if kind == "text" and isinstance(source.get("data"), str):
        return [{"type": "input_text", "text": source["data"]}] if source["data"] else []
    if kind == "url" and isinstance(source.get("url"), str) and source["url"]:
        return [{"type": "input_file", "file_url": source["url"]}]
    if kind == "file" and isinstance(source.get("file_id"), str):
        return [{"type": "input_file", "file_id": source["file_id"]}]
    if kind == "content" and isinstance(source.get("content"), (str, list)):
        inner = source["content"]
        if isinstance(inner, str):
            return [{"type": "input_text", "text": inner}] if inner else []
        return _user_parts(t, inner)
    t.drop("content.document.source")
    return None


def _search_result(block: dict) -> list[dict]:
    lines = [v for v in (block.get("title"), block.get("source")) if isinstance(v, str) and v]
    content = block.get("content")
    for part in content if isinstance(content, list) else ():
        text = block_text(part)
        if text:
            lines.append(text)
    return [{"type": "input_text", "text": "\n".join(lines)}] if lines else []


def _tool_output(t: Translation, block: dict):
    """``tool_result.content`` -> a string, or parts when there are images/files."""
    content = block.get("content")
    if content is None:
        output: str | list = ""
    elif isinstance(content, str):
        output = content
    elif isinstance(content, list):
        parts = _user_parts(t, content)
        if all(p["type"] == "input_text" for p in parts):
            output = "\n".join(p["text"] for p in parts) if len(parts) > 1 else \
                (parts[0]["text"] if parts else "")
        else:
            output = parts
    else:
        t.drop("content.tool_result.content")
        output = ""
    if block.get("is_error") is True:  # Responses has no field for it
        if isinstance(output, str):
            output = "Error: " + output if output else "Error"
        else:
            output = [{"type": "input_text", "text": "Error:"}] + output
    return output


def _strip_billing_line(text: str) -> str:
    if not text.lstrip().startswith(BILLING_PREFIX):
        return text
    _, _, rest = text.lstrip().partition("\n")
    return rest.lstrip("\n")


def _orphan_parts(call_id, output) -> list[dict]:
    head = f"Tool result ({call_id}):" if isinstance(call_id, str) and call_id else "Tool result:"
    if isinstance(output, str):
        return [{"type": "input_text", "text": f"{head}\n{output}" if output else head}]
    return [{"type": "input_text", "text": head}, *output]


def _filename(media_type: str) -> str:
    ext = media_type.rsplit("/", 1)[-1] if "/" in media_type else "bin"
    return f"document.{UNSAFE.sub('', ext)[:8] or 'bin'}"

"""The Chat Completions dialect, translated to and from the Responses API."""

"""Reading a server-sent event stream from Django's test client, a chunk at a time, as a browser would."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Message:
    id: int | None
    event: str
    data: dict[str, Any]


def parse(text: str) -> list[Message]:
    """The messages in a stream's text (comments and the retry line are not messages)."""
    messages = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            if name in ("id", "event", "data"):
                fields[name] = value
        if "event" in fields:
            messages.append(Message(int(fields["id"]) if "id" in fields else None, fields["event"],
                                    json.loads(fields.get("data") or "{}")))
    return messages


def read_until(chunks: Iterator[bytes], done: Callable[[list[Message]], bool], seconds: float = 10.0,
               quiet: bool = False) -> str:
    """Read the stream until `done` holds for what has come (or, with `quiet`, until it first falls quiet),
    and return all of its text. The stream sends a comment whenever it has been quiet for its keepalive time,
    so each read returns soon."""
    text = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        chunk = next(chunks).decode()
        text += chunk
        if (quiet and chunk == ": \n\n") or (not quiet and done(parse(text))):
            return text
    raise AssertionError(f"the stream did not bring what was awaited in {seconds} s; it brought {text!r}")


def deviation_ids(text: str) -> set[int]:
    return {m.data["id"] for m in parse(text) if m.event == "deviation"}


def close(response: Any) -> None:
    """Close a stream as the server would, without closing the test's database connection (and with it the
    transaction the test runs in), which `response.close()` does through Django's request_finished signal.
    A stream that was read is closed through the wrapper Django's test client put around it (which takes
    care of that signal); one never read, by closing the response with the signal held back."""
    import inspect

    from django.core.signals import request_finished
    from django.db import close_old_connections

    if inspect.getgeneratorstate(response._iterator) != inspect.GEN_CREATED:
        response._iterator.close()
        return
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)

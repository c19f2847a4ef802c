"""Short calls for the live model's flood, overflow and memory tests.

One real call, the answered `dial_bridge` call of Asterisk 22 (a Local pair, a
dial, a bridge, four hang-ups), repeated as often as a test wants: every
uniqueid, linkedid and bridge id of copy `n` gets the suffix `-n`, so each copy
is a new call with new channels, and the model must forget each one when it
ends.
"""

from __future__ import annotations

import re
from functools import cache

from _fixtures import fixtures_dir, read_ami

from ami_async.message import Event
from ami_async.protocol import Parser

__all__ = ["call_bytes", "call_events", "followed_names"]


@cache
def _template(only: frozenset[str] | None = None) -> tuple[str, tuple[str, ...]]:
    parser = Parser()
    frames: list[str] = []
    ids: set[str] = set()
    for rec in read_ami(fixtures_dir() / "asterisk-22" / "dial_bridge.ami"):
        if rec.direction != "<<<":
            continue
        for msg in parser.feed(rec.data):
            if not isinstance(msg, Event) or msg.action_id is not None:
                continue  # answers to the recorded client's actions
            if msg.name in ("FullyBooted", "SuccessfulAuth"):
                continue  # the login's
            if only is not None and msg.name.lower() not in only:
                continue
            frames.append("".join(f"{k}: {v}\r\n" for k, v in msg.headers) + "\r\n")
            ids.update(
                v for k, v in msg.headers if v and k.lower().endswith(("uniqueid", "linkedid"))
            )
    text = "".join(frames)
    for one in ids:  # each is replaced on its own: none may hold another
        assert not any(one in other for other in ids if other != one)
        assert re.search(rf"(?<![\w.]){re.escape(one)}(?![\w.])", text)
    return text, tuple(ids)


def _copy(n: int, only: frozenset[str] | None) -> bytes:
    text, ids = _template(only)
    for one in ids:
        text = text.replace(one, f"{one}-{n}")
    return text.encode()


def call_bytes(n: int) -> bytes:
    """The wire bytes of copy `n` of the call (every event, CEL and Cdr included)."""
    return _copy(n, None)


def followed_names() -> frozenset[str]:
    """The (lower-case) names of the events the live model follows."""
    from ami_async.live._model import Model

    return frozenset(Model(lambda: 0.0, 0)._appliers)


def call_events(n: int, only: frozenset[str] | None = None) -> list[Event]:
    """Copy `n` of the call as the parser gives it (only the events named in `only`)."""
    return [m for m in Parser().feed(_copy(n, only)) if isinstance(m, Event)]

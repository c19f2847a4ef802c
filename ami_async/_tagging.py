"""Tagging every event a client receives with the client's `name` (`Event.server`)."""

from __future__ import annotations

from .dispatch import Dispatcher
from .message import Event, Message, event_class

__all__ = ["TaggingDispatcher"]


class TaggingDispatcher(Dispatcher):
    """A `Dispatcher` that makes each event an instance of its server's `Event` subclass.

    The subclass carries `server` as a class attribute, so an event costs one
    class assignment here and nothing more; the event's fields stay unparsed.
    """

    server_class: type[Event]

    def set_server(self, name: str) -> None:
        self.server_class = event_class(name)

    def feed(self, messages: list[Message]) -> None:
        cls = self.server_class
        for msg in messages:
            if type(msg) is Event:
                msg.__class__ = cls
        Dispatcher.feed(self, messages)

"""Python names for AMI names: ``QueueAdd`` -> ``queue_add``, ``Async`` -> ``async_``.

Shared by the package and ``tools/gen_catalogue.py`` (which generates the
`Actions` methods from them).
"""

from __future__ import annotations

import keyword
import re
from typing import Final

__all__ = ["PATTERNED", "argument", "snake"]

#: Names the generic rule would split badly.
SPECIAL: Final = {"DAHDIDNDon": "dahdi_dnd_on", "DAHDIDNDoff": "dahdi_dnd_off"}

#: A header the documentation writes as a pattern for a family of headers
#: (``UserEvent``'s ``HeaderN``, ``UpdateConfig``'s ``Action-000000``, ``AOCMessage``'s
#: ``UnitAmount(0)``): its argument also takes a ``{header: value}`` mapping, or a list
#: numbered from 0.
PATTERNED: Final = re.compile(r"-0{6}$|\(0\)$|^HeaderN$")

#: Keyword arguments the coroutines keep for themselves.
RESERVED: Final = frozenset({"timeout", "self"})


def snake(name: str) -> str:
    """``QueueAdd`` -> ``queue_add``, ``SIPpeers`` -> ``sip_peers``, ``Call-ID`` -> ``call_id``."""
    if name in SPECIAL:
        return SPECIAL[name]
    head = re.match(r"^(SIP|IAX|SKINNY)([a-z].*)$", name)  # SIPpeers, IAXnetstats
    if head:
        name = f"{head.group(1)}_{head.group(2)}"
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    text = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    text = re.sub(r"_+", "_", text)
    return f"f_{text}" if text[:1].isdigit() else text


def argument(header: str) -> str:
    """The keyword argument for header ``header`` (``Async`` -> ``async_``, ``Timeout`` ->
    ``timeout_``)."""
    name = snake(header)
    if keyword.iskeyword(name) or name in RESERVED:
        name += "_"
    return name

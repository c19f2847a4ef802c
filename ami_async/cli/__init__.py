"""The `ami-async` command line: tail events, send actions, run CLI commands,
originate calls, decode recorded captures, run a simulated PBX, and a guided demo.

`main(argv)` returns the exit status: 0 ok, 1 the action failed (an error
response, a call that failed, a timeout, a file that is not a capture), 2 bad
usage (arguments, configuration, unreadable file), 3 no connection or the login
was refused, 130 interrupted (Ctrl-C), 141 the output pipe was closed.
`docs/cli.md` documents it all.

One module per command family: `events`, `actions` (action, command,
originate), `decode`, `simulated` (fake-pbx, demo); `connection` holds the
connection options and settings, `output` the printing, `common` the exit
statuses and error reporting, `app` the parser and `main`.
"""

from __future__ import annotations

from .._transcript import read_transcript
from .actions import action_headers
from .app import build_parser, main
from .common import EXIT_ACTION, EXIT_CONNECTION, EXIT_OK, EXIT_USAGE, UsageError
from .connection import Settings, read_config, resolve_settings
from .decode import Decoded, decode_capture
from .events import where_predicate
from .output import event_line, message_json, message_lines, printable

__all__ = [
    "EXIT_ACTION",
    "EXIT_CONNECTION",
    "EXIT_OK",
    "EXIT_USAGE",
    "Decoded",
    "Settings",
    "UsageError",
    "action_headers",
    "build_parser",
    "decode_capture",
    "event_line",
    "main",
    "message_json",
    "message_lines",
    "printable",
    "read_config",
    "read_transcript",
    "resolve_settings",
    "where_predicate",
]

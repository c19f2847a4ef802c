"""FakeAsterisk's built-in actions: login and session control, Command, AstDB, variables."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from typing import TYPE_CHECKING, Final

from ..message import Message
from ._pbx_model import SimChannel, state_text
from ._session import FakeSession, _Builtin
from ._users import FakeUser, session_limit, successful_auth
from ._wire import (
    _END_COMMAND,
    _LEGACY_ASTERISK_VERSION,
    _encode_lines,
    _header,
    _normalise_mask,
    make_response,
    with_action_id,
)

if TYPE_CHECKING:
    from ._pbx import SimPBX
    from ._server import FakeAsterisk


logger = logging.getLogger("ami_async.testing")


# -- the built-in actions -----------------------------------------------------------------


def _plural(n: int) -> str:
    return "" if n == 1 else "s"


def _uptime_text(seconds: int) -> str:
    """Asterisk's ``print_uptimestr`` (a unit is used only when strictly exceeded)."""
    parts = []
    for unit, size in (
        ("year", 365 * 86400),
        ("week", 7 * 86400),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
    ):
        if seconds > size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{count} {unit}{_plural(count)}")
    if seconds > 0 or not parts:
        parts.append(f"{seconds} second{_plural(seconds)}")
    return ", ".join(parts)


# ListCommands: the synopses and privileges of asterisk-22/listcommands.bin, for the actions
# the fake handles (an action listed here must have a handler: test_testing_actions.py).
_LISTED: Final = (
    ("AGI", "Add an AGI command to execute by Async AGI.", "agi,all"),
    ("Atxfer", "Attended transfer.", "call,all"),
    ("BlindTransfer", "Blind transfer channel(s) to the given destination", "call,all"),
    ("Bridge", "Bridge two channels already in the PBX.", "call,all"),
    ("Challenge", "Generate Challenge for MD5 Auth.", "<none>"),
    ("Command", "Execute Asterisk CLI Command.", "command,all"),
    ("ConfbridgeList", "List participants in a conference.", "reporting,all"),
    ("ConfbridgeListRooms", "List active conferences.", "reporting,all"),
    ("CoreSettings", "Show PBX core settings (version etc).", "system,reporting,all"),
    ("CoreShowChannels", "List currently active channels.", "system,reporting,all"),
    ("CoreStatus", "Show PBX core status variables.", "system,reporting,all"),
    ("DBDel", "Delete DB entry.", "system,all"),
    ("DBDelTree", "Delete DB Tree.", "system,all"),
    ("DBGet", "Get DB Entry.", "system,reporting,all"),
    ("DBGetTree", "Get DB entries, optionally at a particular family/key", "system,reporting,all"),
    ("DBPut", "Put DB entry.", "system,all"),
    ("Events", "Control Event Flow.", "<none>"),
    ("Filter", "Dynamically add filters for the current manager session.", "system,all"),
    ("Getvar", "Gets a channel variable or function value.", "call,reporting,all"),
    ("Hangup", "Hangup channel.", "system,call,all"),
    ("ListCommands", "List available manager commands.", "<none>"),
    ("Login", "Login Manager.", "<none>"),
    ("Logoff", "Logoff Manager.", "<none>"),
    ("Originate", "Originate a call.", "originate,all"),
    ("Park", "Park a channel.", "call,all"),
    ("ParkedCalls", "List parked calls.", "call,all"),
    ("Parkinglots", "Get a list of parking lots", "call,all"),
    ("Ping", "Keepalive command.", "<none>"),
    ("QueueStatus", "Show queue status.", "<none>"),
    ("QueueSummary", "Show queue summary.", "<none>"),
    ("Redirect", "Redirect (transfer) a call.", "call,all"),
    ("Setvar", "Sets a channel variable or function value.", "call,all"),
    ("Status", "List channel status.", "system,call,reporting,all"),
    ("UserEvent", "Send an arbitrary event.", "user,all"),
)
_ACTION_NAMES: Final = {name.lower(): name for name, _, _ in _LISTED}
_PRIVILEGES: Final = {name.lower(): priv for name, _, priv in _LISTED}
_SYNOPSES: Final = {name.lower(): f"{text}  (Priv: {priv})" for name, text, priv in _LISTED}
_NORMAL_CLEARING: Final = 16


def _privilege(action: str) -> str:
    """The write classes a built-in action needs (`"<none>"`: any logged-in user may)."""
    return _PRIVILEGES.get(action, "<none>")


class _ActionsBase:
    """The built-in handlers that need no call: session control, Command, AstDB, variables."""

    def __init__(self, server: FakeAsterisk) -> None:
        self.server = server
        self.started = time.time()
        self.db: dict[str, str] = {}
        sim = server._sim
        self.variables: dict[str, str] = sim.global_variables if sim is not None else {}
        self.calls = 0  # Originates seen without the simulated PBX
        self.actions: dict[str, _Builtin] = {
            "login": self.login,
            "challenge": self.challenge,
            "logoff": self.logoff,
            "ping": self.ping,
            "events": self.events,
            "command": self.command,
            "listcommands": self.listcommands,
            "dbput": self.dbput,
            "dbget": self.dbget,
            "dbgettree": self.dbgettree,
            "dbdel": self.dbdel,
            "dbdeltree": self.dbdeltree,
            "getvar": self.getvar,
            "setvar": self.setvar,
            "filter": self.filter,
            "coresettings": self.coresettings,
            "corestatus": self.corestatus,
        }

    # -- helpers ---------------------------------------------------------------------

    @property
    def uptime(self) -> int:
        return max(0, int(time.time() - self.started))

    @property
    def asterisk_version(self) -> str:
        if self.server.command_format == "legacy":
            return _LEGACY_ASTERISK_VERSION
        major = self.server.version.split(".", 1)[0]
        if not major.isdigit():
            return "22.0.0"
        # AMI 2.x came with Asterisk 12 and 13, 4.0.0 with 15, ... 11.0.0 with 22.
        return f"{int(major) + 11}.0.0" if int(major) >= 4 else _LEGACY_ASTERISK_VERSION

    @property
    def legacy(self) -> bool:
        """Whether the fake plays Asterisk 13 (its texts where they differ from 22's)."""
        return self.asterisk_version == _LEGACY_ASTERISK_VERSION

    def fully_booted(self, *, at_login: bool) -> list[tuple[str, str]]:
        """`FullyBooted`: 13 gives only `Status`; 22 gives `Uptime` and `LastReload` too,
        before `Status` at login and after it when the boot ends (restart_reconnect.bin).
        """
        head = [("Event", "FullyBooted"), ("Privilege", "system,all")]
        status = [("Status", "Fully Booted")]
        if self.legacy:
            return head + status
        uptime = str(self.uptime)
        times = [("Uptime", uptime), ("LastReload", uptime)]
        return head + (times + status if at_login else status + times)

    @property
    def channels(self) -> list[SimChannel]:
        sim = self.server._sim
        return list(sim.channels.values()) if sim is not None else []

    @property
    def active_calls(self) -> int:
        sim = self.server._sim
        return sim.active_calls if sim is not None else 0

    @property
    def processed_calls(self) -> int:
        sim = self.server._sim
        return sim.calls_processed if sim is not None else self.calls

    def find(self, name: str) -> SimChannel | None:
        sim = self.server._sim
        return sim.find_channel(name) if sim is not None and name else None

    @staticmethod
    async def ok(session: FakeSession, action: Message, message: str) -> None:
        await session.send(make_response(action, "Success", Message=message))

    @staticmethod
    async def error(session: FakeSession, action: Message, message: str) -> None:
        await session.send(make_response(action, "Error", Message=message))

    @staticmethod
    def list_start(action: Message, message: str) -> list[tuple[str, str]]:
        return make_response(action, "Success", EventList="start", Message=message)

    @staticmethod
    def list_complete(
        action: Message, event: str, count: int, *extra: tuple[str, str]
    ) -> list[tuple[str, str]]:
        return with_action_id(
            action,
            [("Event", event), ("EventList", "Complete"), ("ListItems", str(count)), *extra],
        )

    @staticmethod
    def action_id_last(action: Message, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """List items of Status, QueueStatus, QueueSummary carry the ActionID last."""
        action_id = _header(action, "ActionID")
        return [*headers, ("ActionID", action_id)] if action_id else headers

    # -- session control ---------------------------------------------------------------

    async def login(self, session: FakeSession, action: Message) -> None:
        if session.authenticated:
            await self.ok(session, action, "Already authenticated")
            return
        username = _header(action, "Username")
        secret = self.server.users.get(username) if username else None
        accepted = False
        if secret is not None:
            if _header(action, "AuthType").lower() == "md5":
                if session._challenge is not None:
                    digest = hashlib.md5((session._challenge + secret).encode()).hexdigest()
                    accepted = _header(action, "Key") == digest
            else:
                accepted = _header(action, "Secret") == secret
        if not accepted:
            if self.server.auth_failure_delay > 0:
                await asyncio.sleep(self.server.auth_failure_delay)
            await self.error(session, action, "Authentication failed")
            session.close()
            return
        account = self.server.accounts.get(username) or FakeUser(secret or "")
        if not account.allow_multiple_login and any(
            s.authenticated and s.username == username for s in self.server.sessions
        ):
            # manager.c: the refusal comes after the same pause as a bad secret, and
            # every logged-in session hears of it (login_already_in_use*.bin).
            if self.server.auth_failure_delay > 0:
                await asyncio.sleep(self.server.auth_failure_delay)
            await self.server._broadcast(session_limit(session))
            await self.error(session, action, "Login Already In Use")
            session.close()
            return
        session._log_in(username, account)
        if _header(action, "Events"):
            session.events_mask = _normalise_mask(_header(action, "Events"))
        await self.ok(session, action, "Authentication accepted")
        # During a boot (after restart()) FullyBooted comes later, on its own.
        if self.server.fully_booted and not self.server._booting:
            await self.server._send_event(session, self.fully_booted(at_login=True))
        await self.server._broadcast(successful_auth(session, username))

    async def challenge(self, session: FakeSession, action: Message) -> None:
        if _header(action, "AuthType").lower() != "md5":
            await self.error(session, action, "Must specify AuthType")
            return
        if session._challenge is None:
            session._challenge = str(random.randint(100_000_000, 999_999_999))
        await session.send(make_response(action, "Success", Challenge=session._challenge))

    async def logoff(self, session: FakeSession, action: Message) -> None:
        await session.send(make_response(action, "Goodbye", Message="Thanks for all the fish."))
        session.close()

    async def ping(self, session: FakeSession, action: Message) -> None:
        await session.send(
            make_response(action, "Success", Ping="Pong", Timestamp=f"{time.time():.6f}")
        )

    async def events(self, session: FakeSession, action: Message) -> None:
        mask = _header(action, "EventMask")
        if mask:
            session.events_mask = _normalise_mask(mask)
        elif self.server.broken_events_action:
            return  # no valid mask: no answer at all (broken_events_action.bin)
        if self.server.broken_events_action and session.events_mask == "on":
            return  # every class: no answer either (manager.c action_events)
        state = "Off" if session.events_mask == "off" else "On"
        await session.send(make_response(action, "Success", Events=state))

    # -- Command -----------------------------------------------------------------------

    def cli(self, command: str) -> tuple[bool, str]:
        """``(known, output)`` of a CLI command; output lines end with ``\\n``."""
        words = command.split()
        key = " ".join(word.lower() for word in words)
        text = self.server._cli.get(key)
        if text is not None:
            return True, text if not text or text.endswith("\n") else text + "\n"
        if key == "core show version":
            built = "built by ami_async @ fake-asterisk on a x86_64 running Linux on 2026-01-01"
            return True, f"Asterisk {self.asterisk_version} {built} 00:00:00 UTC\n"
        if key == "core show channels":
            return True, self.cli_channels()
        if key == "core show calls":
            return True, self.cli_calls()
        if key in ("core show uptime", "core show uptime seconds"):
            if key.endswith("seconds"):
                return True, f"System uptime: {self.uptime}\nLast reload: {self.uptime}\n"
            uptime = _uptime_text(self.uptime)
            return True, f"System uptime: {uptime}\nLast reload: {uptime}\n"
        if key.startswith("database show") and len(words) <= 4:
            return True, self.cli_database(words[2:])
        sim = self.server._sim
        if sim is not None and key.startswith("dialplan show") and len(words) <= 3:
            return self.cli_dialplan(sim, words[2] if len(words) == 3 else "")
        if sim is not None and key.startswith("channel request hangup") and len(words) == 4:
            return True, self.cli_hangup(sim, words[3])
        hint = " ".join(words[:2])
        return False, (
            f"No such command '{command}' "
            f"(type 'core show help {hint}' for other possible commands)\n"
        )

    def cli_calls(self) -> str:
        calls, processed = self.active_calls, self.processed_calls
        return (
            f"{calls} of 500 max active call{_plural(calls)} "
            f"({calls / 500 * 100:5.2f}% of capacity)\n"
            f"{processed} call{_plural(processed)} processed\n"
        )

    def cli_channels(self) -> str:
        """``core show channels`` (main/cli.c handle_chanlist), 13 and 22 column widths."""
        fmt = (
            "%-20.20s %-20.20s %-7.7s %-30.30s"
            if self.server.command_format == "legacy"
            else "%-64.64s %-32.32s %-7.7s %-30.30s"
        )
        lines = [fmt % ("Channel", "Location", "State", "Application(Data)")]
        channels = self.channels
        for channel in channels:
            location = (
                f"{channel.exten}@{channel.context}:{channel.priority}"
                if channel.context and channel.exten
                else "(None)"
            )
            app = f"{channel.appl}({channel.data})" if channel.appl else "(None)"
            lines.append(fmt % (channel.name, location, state_text(channel.state), app))
        count = len(channels)
        lines.append(f"{count} active channel{_plural(count)}")
        return "\n".join(lines) + "\n" + self.cli_calls()

    def cli_database(self, args: list[str]) -> str:
        """``database show [family [key]]`` (main/db.c)."""
        prefix = "/" + "/".join(args) if args else ""
        keys = sorted(k for k in self.db if not prefix or k == prefix or k.startswith(prefix + "/"))
        lines = [f"{key:<50}: {self.db[key]:<25}" for key in keys]
        lines.append(f"{len(keys)} results found.")  # always "results" (main/db.c)
        return "\n".join(lines) + "\n"

    def cli_dialplan(self, sim: SimPBX, which: str) -> tuple[bool, str]:
        """``dialplan show [[exten@]context]`` (main/pbx.c show_dialplan_helper)."""
        exten_filter, _, context_filter = which.rpartition("@") if "@" in which else ("", "", which)
        lines: list[str] = []
        extens = priorities = contexts = 0
        for context, extensions in sim.dialplan.contexts.items():
            if context_filter and context != context_filter:
                continue
            shown = [
                (exten, steps)
                for exten, steps in extensions.items()
                if not exten_filter or exten == exten_filter
            ]
            if exten_filter and not shown:
                continue
            contexts += 1
            lines.append(f"[ Context '{context}' created by 'pbx_config' ]")
            for exten, steps in shown:
                extens += 1
                for number, (app, data) in enumerate(steps, 1):
                    priorities += 1
                    label = f"'{exten}' =>" if number == 1 else ""
                    lines.append(f"  {label:<17} {f'{number}. {app}({data})':<45} [pbx_config]")
            lines.append("")
        if not contexts:
            if context_filter:
                return False, f"There is no existence of '{which}' context\n"
            return False, "There are no contexts\n"
        lines.append(
            f"-= {extens} extension{_plural(extens)} ({priorities} "
            f"priorit{'y' if priorities == 1 else 'ies'}) in {contexts} "
            f"context{_plural(contexts)}. =-"
        )
        return True, "\n".join(lines) + "\n"

    def cli_hangup(self, sim: SimPBX, name: str) -> str:
        """``channel request hangup <channel|all>``: an explicit soft hangup (SoftHangupRequest)."""
        targets = (
            self.channels if name.lower() == "all" else [c for c in [sim.find_channel(name)] if c]
        )
        if not targets:
            return f"{name} is not a known channel\n"
        for channel in targets:
            if channel.alive:
                sim.soft_hangup(channel)
        if name.lower() == "all":
            return "Requested Hangup on all channels\n"
        return f"Requested Hangup on channel '{targets[0].name}'\n"

    async def command(self, session: FakeSession, action: Message) -> None:
        command = _header(action, "Command")
        if not command:
            await self.error(session, action, "No command provided")
            return
        known, text = self.cli(command)
        if self.server.command_format == "legacy":
            # Asterisk 13: ActionID third, raw CLI text with bare \n, then the marker.
            head = [("Response", "Follows"), ("Privilege", "Command")]
            if _header(action, "ActionID"):
                head.append(("ActionID", _header(action, "ActionID")))
            body = text.encode("utf-8", "surrogateescape")
            await session.send(_encode_lines(head) + body + _END_COMMAND)
            return
        lines = text[:-1].split("\n") if text else []
        output = [("Message", "Command output follows"), *(("Output", line) for line in lines)]
        await session.send(make_response(action, "Success" if known else "Error", output))

    async def listcommands(self, session: FakeSession, action: Message) -> None:
        lines = [
            (name, _SYNOPSES[name.lower()])
            for name in sorted(_ACTION_NAMES.values(), key=str.lower)
            if name.lower() in self.actions
        ]
        await session.send(make_response(action, "Success", lines))

    # -- AstDB -----------------------------------------------------------------------

    async def dbput(self, session: FakeSession, action: Message) -> None:
        family, key = _header(action, "Family"), _header(action, "Key")
        if not family:
            await self.error(session, action, "No family specified")
        elif not key:
            await self.error(session, action, "No key specified")
        else:
            self.db[f"/{family}/{key}"] = _header(action, "Val")
            await self.ok(session, action, "Updated database successfully")

    async def dbget(self, session: FakeSession, action: Message) -> None:
        family, key = _header(action, "Family"), _header(action, "Key")
        if not family:
            await self.error(session, action, "No family specified.")
            return
        if not key:
            await self.error(session, action, "No key specified.")
            return
        value = self.db.get(f"/{family}/{key}")
        if value is None:
            await self.error(session, action, "Database entry not found")
            return
        # DBGetResponse carries its ActionID last (main/db.c).
        item = [("Event", "DBGetResponse"), ("Family", family), ("Key", key), ("Val", value)]
        if _header(action, "ActionID"):
            item.append(("ActionID", _header(action, "ActionID")))
        await session.send(
            self.list_start(action, "Result will follow"),
            item,
            self.list_complete(action, "DBGetComplete", 1),
        )

    def tree(self, family: str, key: str) -> list[str]:
        prefix = f"/{family}/{key}" if key else f"/{family}"
        return sorted(k for k in self.db if k == prefix or k.startswith(prefix + "/"))

    async def dbgettree(self, session: FakeSession, action: Message) -> None:
        family = _header(action, "Family")
        if not family:
            await self.error(session, action, "No family specified.")
            return
        keys = self.tree(family, _header(action, "Key"))
        if not keys:
            await self.error(session, action, "Database entry not found")
            return
        action_id = _header(action, "ActionID")
        items = [
            [("Event", "DBGetTreeResponse"), ("Key", k), ("Val", self.db[k])]
            + ([("ActionID", action_id)] if action_id else [])
            for k in keys
        ]
        await session.send(
            self.list_start(action, "Result will follow"),
            *items,
            self.list_complete(action, "DBGetTreeComplete", len(items)),
        )

    async def dbdel(self, session: FakeSession, action: Message) -> None:
        family, key = _header(action, "Family"), _header(action, "Key")
        if not family:
            await self.error(session, action, "No family specified.")
        elif not key:
            await self.error(session, action, "No key specified.")
        elif self.db.pop(f"/{family}/{key}", None) is None:
            await self.error(session, action, "Database entry could not be deleted")
        else:
            await self.ok(session, action, "Key deleted successfully")

    async def dbdeltree(self, session: FakeSession, action: Message) -> None:
        family = _header(action, "Family")
        if not family:
            await self.error(session, action, "No family specified.")
            return
        keys = self.tree(family, _header(action, "Key"))
        for k in keys:
            del self.db[k]
        if keys:
            await self.ok(session, action, "Key tree deleted successfully")
        else:
            await self.error(session, action, "Database entry not found")

    # -- variables -------------------------------------------------------------------

    async def _variable_target(
        self, session: FakeSession, action: Message
    ) -> tuple[str, SimChannel | None] | None:
        """The variable a Getvar/Setvar names and its channel (`None`: global);
        `None` once the error Asterisk gives is answered."""
        variable = _header(action, "Variable")
        if not variable:
            await self.error(session, action, "No variable specified")
            return None
        name = _header(action, "Channel")
        channel = self.find(name)
        if name and channel is None:
            await self.error(session, action, "No such channel")
            return None
        return variable, channel

    async def getvar(self, session: FakeSession, action: Message) -> None:
        target = await self._variable_target(session, action)
        if target is None:
            return
        variable, channel = target
        sim = self.server._sim
        if sim is not None:
            value = sim.get_variable(channel, variable) or ""
        else:
            value = self.variables.get(variable, "")
        await session.send(make_response(action, "Success", Variable=variable, Value=value))

    async def setvar(self, session: FakeSession, action: Message) -> None:
        target = await self._variable_target(session, action)
        if target is None:
            return
        variable, channel = target
        value = _header(action, "Value")
        await self.ok(session, action, "Variable Set")
        sim = self.server._sim
        if sim is not None:
            sim.set_variable(channel, variable, value)
            return
        self.variables[variable] = value
        event = [
            ("Event", "VarSet"),
            ("Privilege", "dialplan,all"),
            ("Channel", "none"),
            ("Uniqueid", "none"),
            ("Variable", variable),
            ("Value", value),
        ]
        await self.server._broadcast(event)

    # -- misc ------------------------------------------------------------------------

    async def filter(self, session: FakeSession, action: Message) -> None:
        # Accepted, not applied: the fake does not filter events.
        if _header(action, "Operation").lower() != "add":
            await self.error(session, action, "Unknown operation")
        else:
            await self.ok(session, action, "Success")

    async def coresettings(self, session: FakeSession, action: Message) -> None:
        settings = [
            ("AMIversion", self.server.version),
            ("AsteriskVersion", self.asterisk_version),
            ("SystemName", ""),
            ("CoreMaxCalls", "500"),
            ("CoreMaxLoadAvg", "0.000000"),
            ("CoreRunUser", ""),
            ("CoreRunGroup", ""),
            ("CoreMaxFilehandles", "0"),
            ("CoreRealTimeEnabled", "No"),
            ("CoreCDRenabled", "Yes"),
            ("CoreHTTPenabled", "No"),
            ("SoundsSearchCustomDir", "No"),
        ]
        await session.send(make_response(action, "Success", settings))

    async def corestatus(self, session: FakeSession, action: Message) -> None:
        started = time.localtime(self.started)
        date, clock = time.strftime("%Y-%m-%d", started), time.strftime("%H:%M:%S", started)
        status = [
            ("CoreStartupDate", date),
            ("CoreStartupTime", clock),
            ("CoreReloadDate", date),
            ("CoreReloadTime", clock),
            ("CoreCurrentCalls", str(self.active_calls)),
            ("CoreProcessedCalls", str(self.processed_calls)),
        ]
        await session.send(make_response(action, "Success", status))

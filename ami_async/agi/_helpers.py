"""The typed AGI commands of `AGISession`: each builds its command line and reads its answer.

The command lines are the ones the recordings show Asterisk understanding
(``shared/fixtures/*/fastagi_basic.agi``): escape digits are always quoted
(``STREAM FILE hello-world ""``), other arguments only when they need it.
"""

from __future__ import annotations

import datetime as _dt
import math

from ..errors import AGIError, AGIHangupError
from ._commands import AGIResult, quote

__all__ = ["HelpersMixin"]


def _ms(seconds: float | None) -> str:
    """Seconds as Asterisk's milliseconds; `None` is ``-1`` (wait forever)."""
    if seconds is None:
        return "-1"
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"a duration must be a finite number >= 0 or None, not {seconds!r}")
    return str(round(seconds * 1000))


def _int(value: int | float | str) -> str:
    text = str(int(value)) if isinstance(value, (int, float)) else str(value)
    return quote(text)


def _epoch(when: int | float | _dt.datetime) -> str:
    if isinstance(when, _dt.datetime):
        return str(int(when.timestamp()))
    return str(int(when))


class HelpersMixin:
    """`answer`, `stream_file`, `get_data`, ... on top of `command`."""

    command_timeout: float | None

    async def command(self, line: str, *, timeout: float | None = None) -> AGIResult:
        raise NotImplementedError  # pragma: no cover - AGISession defines it

    def _longer(self, timeout: float | None, asterisk_wait: float | None) -> float | None:
        """The wait for a command that itself waits ``asterisk_wait`` seconds in Asterisk."""
        if timeout is not None:
            return timeout
        if self.command_timeout is None:
            return None
        return self.command_timeout + (asterisk_wait or 0.0)

    async def _io(self, line: str, timeout: float | None) -> AGIResult:
        """A command that does channel I/O: ``-1`` means the channel hung up."""
        result = await self.command(line, timeout=timeout)
        if result.result == -1:
            raise AGIHangupError(f"{line}: the channel hung up", command=line, answer=result.text)
        return result

    async def _ok(self, line: str, timeout: float | None, what: str = "failed") -> AGIResult:
        """A command whose ``-1`` (or ``0`` for the database) is a plain failure."""
        result = await self.command(line, timeout=timeout)
        if result.result == -1:
            raise AGIError(f"{line}: {what}", command=line, answer=result.text)
        return result

    # -- the call ----------------------------------------------------------------------------

    async def answer(self, *, timeout: float | None = None) -> None:
        """``ANSWER`` the channel; `AGIError` if Asterisk could not."""
        await self._ok("ANSWER", timeout)

    async def hangup(self, channel: str | None = None, *, timeout: float | None = None) -> None:
        """``HANGUP`` this channel (or ``channel``); Asterisk then sends ``HANGUP``."""
        line = "HANGUP" if channel is None else f"HANGUP {quote(channel)}"
        await self._ok(line, timeout, "no such channel")

    async def channel_status(
        self, channel: str | None = None, *, timeout: float | None = None
    ) -> int:
        """``CHANNEL STATUS``: 4 ringing, 6 up (answered), ... (Asterisk's channel states)."""
        line = "CHANNEL STATUS" if channel is None else f"CHANNEL STATUS {quote(channel)}"
        return (await self._ok(line, timeout, "no such channel")).result

    async def set_autohangup(self, seconds: float, *, timeout: float | None = None) -> None:
        """``SET AUTOHANGUP``: hang up after ``seconds`` (0 cancels it)."""
        await self.command(f"SET AUTOHANGUP {_int(seconds)}", timeout=timeout)

    # -- sound and digits ----------------------------------------------------------------------

    async def stream_file(
        self,
        filename: str,
        escape_digits: str = "",
        *,
        offset: int | None = None,
        timeout: float | None = None,
    ) -> AGIResult:
        """``STREAM FILE``: ``result`` 0 played to the end, a digit's ASCII code when
        interrupted (`AGIResult.digit`), -1 when the file could not be played;
        ``extra["endpos"]`` the sample where it stopped."""
        line = f"STREAM FILE {quote(filename)} {quote(escape_digits, always=True)}"
        if offset is not None:
            line += f" {_int(offset)}"
        return await self.command(line, timeout=timeout)

    async def control_stream_file(
        self,
        filename: str,
        escape_digits: str = "",
        *,
        skip_ms: int | None = None,
        forward: str | None = None,
        rewind: str | None = None,
        pause: str | None = None,
        offset_ms: int | None = None,
        timeout: float | None = None,
    ) -> AGIResult:
        """``CONTROL STREAM FILE``, with skip, forward, rewind and pause keys: as `stream_file`."""
        line = f"CONTROL STREAM FILE {quote(filename)} {quote(escape_digits, always=True)}"
        options = [
            None if skip_ms is None else str(int(skip_ms)),
            None if forward is None else quote(forward, always=True),
            None if rewind is None else quote(rewind, always=True),
            None if pause is None else quote(pause, always=True),
            None if offset_ms is None else str(int(offset_ms)),
        ]
        defaults = ["3000", '"#"', '"*"', '""', "0"]
        last = max((i for i, v in enumerate(options) if v is not None), default=-1)
        for index in range(last + 1):
            line += " " + (options[index] or defaults[index])
        return await self.command(line, timeout=timeout)

    async def get_data(
        self,
        filename: str,
        timeout: float | None = None,
        max_digits: int | None = None,
        *,
        wait: float | None = None,
    ) -> str:
        """``GET DATA``: play ``filename`` and read up to ``max_digits`` digits, ``timeout``
        seconds each (Asterisk's default when `None`); the digits, ``""`` on a timeout.

        ``wait`` bounds the whole command (default `command_timeout` plus
        ``timeout`` for each digit).
        """
        line = f"GET DATA {quote(filename)}"
        if timeout is not None or max_digits is not None:
            line += f" {_ms(timeout) if timeout is not None else '0'}"
        if max_digits is not None:
            line += f" {int(max_digits)}"
        per_digit = (timeout or 0.0) * max(max_digits or 1, 1)
        result = await self._io(line, self._longer(wait, per_digit))
        return result.result_text

    async def get_option(
        self,
        filename: str,
        escape_digits: str = "",
        timeout: float | None = None,
        *,
        wait: float | None = None,
    ) -> AGIResult:
        """``GET OPTION``: `stream_file`, then wait ``timeout`` s for one of the digits."""
        line = f"GET OPTION {quote(filename)} {quote(escape_digits, always=True)}"
        if timeout is not None:
            line += f" {_ms(timeout)}"
        return await self._io(line, self._longer(wait, timeout))

    async def wait_for_digit(
        self, timeout: float | None = None, *, wait: float | None = None
    ) -> str:
        """``WAIT FOR DIGIT``: the digit pressed within ``timeout`` s (`None`: no limit),
        ``""`` if none; `AGIHangupError` when the channel hung up meanwhile."""
        line = f"WAIT FOR DIGIT {_ms(timeout)}"
        if timeout is None and wait is None and self.command_timeout is not None:
            wait = math.inf  # Asterisk waits for ever: so does the command
        result = await self._io(line, self._longer(wait, timeout))
        return chr(result.result) if result.result > 0 else ""

    async def record_file(
        self,
        filename: str,
        format: str = "wav",
        escape_digits: str = "#",
        timeout: float | None = None,
        *,
        offset: int | None = None,
        beep: bool = False,
        silence: int | None = None,
        wait: float | None = None,
    ) -> AGIResult:
        """``RECORD FILE`` up to ``timeout`` s (`None`: until a digit or the silence):
        ``result`` the digit that stopped it (or 0), ``extra["endpos"]``."""
        line = (
            f"RECORD FILE {quote(filename)} {quote(format)} "
            f"{quote(escape_digits, always=True)} {_ms(timeout)}"
        )
        if offset is not None:
            line += f" {int(offset)}"
        if beep:
            line += " BEEP"
        if silence is not None:
            line += f" s={int(silence)}"
        return await self._io(line, self._longer(wait, timeout))

    async def _say(
        self, what: str, value: str, escape_digits: str, timeout: float | None
    ) -> AGIResult:
        line = f"SAY {what} {value} {quote(escape_digits, always=True)}"
        return await self._io(line, timeout)

    async def say_digits(
        self, digits: str | int, escape_digits: str = "", *, timeout: float | None = None
    ) -> AGIResult:
        """``SAY DIGITS`` one by one; ``result`` the digit that interrupted it, or 0."""
        return await self._say("DIGITS", quote(str(digits)), escape_digits, timeout)

    async def say_number(
        self,
        number: int | str,
        escape_digits: str = "",
        *,
        gender: str | None = None,
        timeout: float | None = None,
    ) -> AGIResult:
        """``SAY NUMBER`` (``gender`` as Asterisk takes it: ``m``, ``f``, ``c``, ``n``)."""
        line = f"SAY NUMBER {quote(str(number))} {quote(escape_digits, always=True)}"
        if gender is not None:
            line += f" {quote(gender)}"
        return await self._io(line, timeout)

    async def say_alpha(
        self, text: str, escape_digits: str = "", *, timeout: float | None = None
    ) -> AGIResult:
        """``SAY ALPHA``: spell ``text`` letter by letter."""
        return await self._say("ALPHA", quote(text), escape_digits, timeout)

    async def say_phonetic(
        self, text: str, escape_digits: str = "", *, timeout: float | None = None
    ) -> AGIResult:
        """``SAY PHONETIC``: spell ``text`` with the NATO alphabet."""
        return await self._say("PHONETIC", quote(text), escape_digits, timeout)

    async def say_date(
        self,
        when: int | float | _dt.datetime,
        escape_digits: str = "",
        *,
        timeout: float | None = None,
    ) -> AGIResult:
        """``SAY DATE`` of ``when`` (a `datetime` or seconds since the epoch)."""
        return await self._say("DATE", _epoch(when), escape_digits, timeout)

    async def say_time(
        self,
        when: int | float | _dt.datetime,
        escape_digits: str = "",
        *,
        timeout: float | None = None,
    ) -> AGIResult:
        """``SAY TIME`` of ``when`` (a `datetime` or seconds since the epoch)."""
        return await self._say("TIME", _epoch(when), escape_digits, timeout)

    async def say_datetime(
        self,
        when: int | float | _dt.datetime,
        escape_digits: str = "",
        *,
        format: str | None = None,
        timezone: str | None = None,
        timeout: float | None = None,
    ) -> AGIResult:
        """``SAY DATETIME`` of ``when`` in Asterisk's ``format`` (``"ABdY 'digits/at' IMp"``)."""
        line = f"SAY DATETIME {_epoch(when)} {quote(escape_digits, always=True)}"
        if format is not None or timezone is not None:
            line += f" {quote(format or '', always=True)}"
        if timezone is not None:
            line += f" {quote(timezone)}"
        return await self._io(line, timeout)

    # -- variables and the dialplan --------------------------------------------------------

    async def set_variable(self, name: str, value: str, *, timeout: float | None = None) -> None:
        """``SET VARIABLE`` (the value comes back unescaped from `get_variable`)."""
        await self.command(f"SET VARIABLE {quote(name)} {quote(str(value))}", timeout=timeout)

    async def get_variable(self, name: str, *, timeout: float | None = None) -> str | None:
        """``GET VARIABLE``: the value, `None` when the variable is not set."""
        result = await self.command(f"GET VARIABLE {quote(name)}", timeout=timeout)
        return result.data if result.result == 1 else None

    async def get_full_variable(
        self, expression: str, channel: str | None = None, *, timeout: float | None = None
    ) -> str | None:
        """``GET FULL VARIABLE``: ``expression`` (``"${CALLERID(num)}"``) expanded, or `None`."""
        line = f"GET FULL VARIABLE {quote(expression, always=True)}"
        if channel is not None:
            line += f" {quote(channel)}"
        result = await self.command(line, timeout=timeout)
        return result.data if result.result == 1 else None

    async def exec(self, application: str, *args: str, timeout: float | None = None) -> AGIResult:
        """``EXEC`` a dialplan application with ``args`` joined by commas: ``result`` is the
        application's (0 usually, -2 when there is no such application)."""
        line = f"EXEC {quote(application)}"
        if args:
            line += f" {quote(','.join(args))}"
        return await self.command(line, timeout=timeout)

    async def set_context(self, context: str, *, timeout: float | None = None) -> None:
        """``SET CONTEXT`` where the dialplan goes on after the AGI."""
        await self.command(f"SET CONTEXT {quote(context)}", timeout=timeout)

    async def set_extension(self, extension: str, *, timeout: float | None = None) -> None:
        """``SET EXTENSION`` where the dialplan goes on after the AGI."""
        await self.command(f"SET EXTENSION {quote(str(extension))}", timeout=timeout)

    async def set_priority(self, priority: int | str, *, timeout: float | None = None) -> None:
        """``SET PRIORITY`` (a number or a label) where the dialplan goes on after the AGI."""
        await self.command(f"SET PRIORITY {quote(str(priority))}", timeout=timeout)

    async def set_callerid(self, callerid: str, *, timeout: float | None = None) -> None:
        """``SET CALLERID`` (``"Name <1000>"`` or a number)."""
        await self.command(f"SET CALLERID {quote(callerid)}", timeout=timeout)

    async def set_music(
        self, on: bool = True, music_class: str | None = None, *, timeout: float | None = None
    ) -> None:
        """``SET MUSIC on|off`` (music on hold, of ``music_class``)."""
        line = f"SET MUSIC {'on' if on else 'off'}"
        if music_class is not None:
            line += f" {quote(music_class)}"
        await self.command(line, timeout=timeout)

    # -- AstDB --------------------------------------------------------------------------------

    async def database_get(
        self, family: str, key: str, *, timeout: float | None = None
    ) -> str | None:
        """``DATABASE GET``: the value, `None` when the key does not exist."""
        result = await self.command(f"DATABASE GET {quote(family)} {quote(key)}", timeout=timeout)
        return result.data if result.result == 1 else None

    async def database_put(
        self, family: str, key: str, value: str, *, timeout: float | None = None
    ) -> None:
        """``DATABASE PUT``; `AGIError` when Asterisk could not store it."""
        line = f"DATABASE PUT {quote(family)} {quote(key)} {quote(str(value))}"
        result = await self.command(line, timeout=timeout)
        if result.result != 1:
            raise AGIError(f"{line}: failed", command=line, answer=result.text)

    async def database_del(self, family: str, key: str, *, timeout: float | None = None) -> bool:
        """``DATABASE DEL``: `True` when Asterisk says it worked (a missing key too)."""
        line = f"DATABASE DEL {quote(family)} {quote(key)}"
        return (await self.command(line, timeout=timeout)).result == 1

    async def database_deltree(
        self, family: str, keytree: str | None = None, *, timeout: float | None = None
    ) -> bool:
        """``DATABASE DELTREE`` of ``family`` (or its ``keytree``): `True` when it worked."""
        line = f"DATABASE DELTREE {quote(family)}"
        if keytree is not None:
            line += f" {quote(keytree)}"
        return (await self.command(line, timeout=timeout)).result == 1

    # -- the rest -------------------------------------------------------------------------------

    async def verbose(self, message: str, level: int = 1, *, timeout: float | None = None) -> None:
        """``VERBOSE``: log ``message`` at verbosity ``level`` on the Asterisk console."""
        await self.command(f"VERBOSE {quote(message, always=True)} {int(level)}", timeout=timeout)

    async def noop(self, text: str | None = None, *, timeout: float | None = None) -> None:
        """``NOOP`` (works on a dead channel too: a cheap way to check the session)."""
        line = "NOOP" if text is None else f"NOOP {quote(text, always=True)}"
        await self.command(line, timeout=timeout)

"""The documentation tells the truth: every code sample in docs/ and the READMEs runs.

Each ```python block is found and handled by its kind, given by an HTML comment
on the line before the block (invisible on the rendered page) or following from
the code. The Python of the migration guides' side-by-side tables (the
right-hand cell of a row, ``<pre><code class="language-python">``) is a
sample too, its marker in the cell before ``<pre>``.

- ``program`` (any block that calls ``asyncio.run``): a whole script. It runs in
  a fresh interpreter, in a directory holding the page's named samples (a block
  whose first line is ``# name.py``), against a FakeAsterisk of this test on
  127.0.0.1 and a free port: the script's ``AMI_HOST`` / ``AMI_PORT`` /
  ``AMI_USERNAME`` / ``AMI_SECRET`` point at it, and a client made for
  127.0.0.1:5038 (the address the samples show) is redirected to it.
  ``until="text"`` ends a script that would run on (it listens for events)
  once ``text`` is on its output.
- ``snippet`` (the default): runs with top-level ``await`` where the page says
  it does (docs/concepts.md): ``ami`` (or ``client``) a client connected to
  ``pbx``, a FakeAsterisk with its simulated PBX; ``asyncio`` and
  ``ami_async`` imported; 127.0.0.1:5038 redirected to ``pbx``.
- ``pytest``: a test module, run by pytest (with the project's pytest plugin,
  and examples/ on the path).
- ``signature``: a call signature (docs/api.md); its parameter names, kinds and
  defaults must be those of the real object.
- ``fragment``: an excerpt that cannot run alone (names from around it); it
  must still compile.
- ``shell`` (on a ``sh`` or ``console`` block): each command runs (offline ones
  only: a demo, an example with ``--fake``) and must exit 0.

``output="text|other text"`` on a marker: what the sample must print (the
outcome its comments promise). tests/test_docs_claims.py checks the API
reference and the pages' other claims.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import html
import inspect
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ami_async
from ami_async.testing import FakeAsterisk

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md", ROOT / "examples" / "README.md"]
KINDS = {"program", "snippet", "pytest", "signature", "fragment", "shell"}
MARKER = re.compile(r"<!--\s*sample:\s*(\w+)(.*?)-->")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")  # indented in a list item too
RUN_LIMIT = 60.0  # seconds any one sample may take


@dataclass(frozen=True)
class Sample:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    kind: str
    options: dict[str, str]
    code: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def filename(self) -> str | None:
        """``name.py`` when the block's first line is the comment ``# name.py``."""
        first = self.code.split("\n", 1)[0]
        match = re.fullmatch(r"#\s*([\w.]+\.py)\s*", first)
        return match.group(1) if match else None


def samples_of(page: Path) -> list[Sample]:
    lines = page.read_text(encoding="utf-8").split("\n")
    found: list[Sample] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        indent = fence.group(1)
        end = next(j for j in range(i + 1, len(lines)) if lines[j] == indent + "```")
        code = textwrap.dedent("\n".join(lines[i + 1 : end])) + "\n"
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.search(before)
        options = dict(re.findall(r'(\w+)="([^"]*)"', marker.group(2))) if marker else {}
        if marker:
            kind = marker.group(1)
            assert kind in KINDS, f"{page.name}:{i}: unknown sample kind {kind!r}"
        elif fence.group(2) != "python":
            kind = ""
        elif "asyncio.run(" in code:
            kind = "program"
        else:
            kind = "snippet"
        if kind:
            found.append(Sample(page, i + 1, fence.group(2), kind, options, code))
        i = end + 1
    found.extend(html_samples_of(page, lines))
    return found


def html_samples_of(page: Path, lines: list[str]) -> list[Sample]:
    """The Python of side-by-side tables (``<pre><code class="language-python">``)."""
    found = []
    text = "\n".join(lines)
    code_of = re.compile(r'<pre><code class="language-python">(.*?)</code></pre>', re.S)
    rows = [row for row in re.finditer(r"<tr>.*?</tr>", text, re.S)]
    # A row compares another library (left) with ami_async (right): the last cell is ours.
    matches = [list(code_of.finditer(text, row.start(), row.end()))[-1:] for row in rows]
    for match in [m for cell in matches for m in cell]:
        line = text.count("\n", 0, match.start()) + 1
        start = text.rfind("\n", 0, text.rfind("\n", 0, match.start()))
        marker = MARKER.search(text[start : match.start()])
        kind = marker.group(1) if marker else "snippet"
        options = dict(re.findall(r'(\w+)="([^"]*)"', marker.group(2))) if marker else {}
        code = html.unescape(match.group(1)) + "\n"
        found.append(Sample(page, line, "python", kind, options, code))
    return found


SAMPLES = [sample for page in PAGES for sample in samples_of(page)]


def of_kind(*kinds: str) -> list[Any]:
    return [pytest.param(s, id=s.id) for s in SAMPLES if s.kind in kinds]


def test_every_python_block_is_a_known_kind() -> None:
    """A new sample is run by default; one that cannot run says so with a marker."""
    counts = {kind: sum(s.kind == kind for s in SAMPLES) for kind in KINDS}
    assert counts["program"] >= 4 and counts["snippet"] >= 15 and counts["signature"] >= 10
    for sample in SAMPLES:
        if sample.kind == "shell":
            assert sample.language in ("sh", "console"), f"{sample.id}: not a shell block"
        else:
            assert sample.language == "python", (
                f"{sample.id}: a {sample.kind} marker on a shell block"
            )


# -- compiling ----------------------------------------------------------------------------


def compiled(sample: Sample) -> Any:
    """The sample's code object (top-level ``await`` allowed, as in an asyncio REPL)."""
    return compile(sample.code, sample.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize("sample", of_kind("fragment", "snippet", "program", "pytest"))
def test_sample_compiles(sample: Sample) -> None:
    compiled(sample)


# -- snippets -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def page_context() -> AsyncIterator[dict[str, Any]]:
    """What docs/concepts.md says a snippet runs inside (its clock 100 times faster).

    The PBX also has the extension the migration guides dial (200 in
    ``from-internal``); their ``PJSIP/100`` is a channel it cannot create.
    """
    async with FakeAsterisk(time_scale=0.01) as pbx:
        pbx.pbx.add_extension("from-internal", "200", "Answer")
        pbx.pbx.add_extension("from-internal", "200", "Wait", "1")
        async with ami_async.connect(
            pbx.host, pbx.port, username="admin", secret="amp111", ping_interval=None
        ) as ami:
            yield {
                "__name__": "__sample__",
                "asyncio": asyncio,
                "ami_async": ami_async,
                "FakeAsterisk": FakeAsterisk,
                "ami": ami,
                "client": ami,  # the name the integration pages use
                "pbx": pbx,
            }


def redirect_clients(monkeypatch: pytest.MonkeyPatch, pbx: FakeAsterisk) -> None:
    """A client made for 127.0.0.1:5038 (what the samples show) connects to ``pbx``."""
    init = ami_async.Client.__init__

    def redirected(
        self: ami_async.Client, host: str = "127.0.0.1", port: int = 5038, **options: Any
    ) -> None:
        if host in ("127.0.0.1", "localhost") and port == 5038:
            host, port = pbx.host, pbx.port
        init(self, host, port, **options)

    monkeypatch.setattr(ami_async.Client, "__init__", redirected)


@pytest.mark.parametrize("sample", of_kind("snippet"))
async def test_snippet_runs(
    sample: Sample, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with page_context() as namespace:
        redirect_clients(monkeypatch, namespace["pbx"])
        result = eval(compiled(sample), namespace)
        if inspect.iscoroutine(result):
            await asyncio.wait_for(result, RUN_LIMIT)
    output = capsys.readouterr().out
    print(output)  # shown if the assertion fails
    assert_shows(sample, output)


def assert_shows(sample: Sample, output: str) -> None:
    """``output="a|b"`` on the marker: each of those texts is in what the sample printed."""
    for expected in sample.options.get("output", "").split("|"):
        assert expected in output, f"{sample.id} did not print {expected!r}"


# -- programs -----------------------------------------------------------------------------

# Run a script as __main__ with any client for 127.0.0.1:5038 sent to the test's server.
REDIRECT = textwrap.dedent(
    """
    import os, runpy, sys
    import ami_async.client

    target = (os.environ["AMI_HOST"], int(os.environ["AMI_PORT"]))
    init = ami_async.client.Client.__init__

    def redirected(self, host="127.0.0.1", port=5038, *args, **kwargs):
        if host in ("127.0.0.1", "localhost") and port == 5038:
            host, port = target
        init(self, host, port, *args, **kwargs)

    ami_async.client.Client.__init__ = redirected
    sys.argv = sys.argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
    runpy.run_path(sys.argv[0], run_name="__main__")
    """
)


def write_page_modules(sample: Sample, where: Path) -> Path:
    """Write the page's named samples into ``where``; return the path of this one."""
    for other in SAMPLES:
        if other.page == sample.page and other.filename and other.kind != "pytest":
            (where / other.filename).write_text(other.code, encoding="utf-8")
    path = where / (sample.filename or "sample.py")
    path.write_text(sample.code, encoding="utf-8")
    return path


async def run_program(argv: list[str], cwd: Path, env: dict[str, str], until: str | None) -> str:
    """Run ``argv``; its output, after it exits 0 (or once ``until`` was printed)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output = b""
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RUN_LIMIT
        while chunk := await asyncio.wait_for(proc.stdout.read(4096), deadline - loop.time()):
            output += chunk
            if until is not None and until.encode() in output:
                proc.send_signal(signal.SIGTERM)
                await proc.wait()
                return output.decode()
        code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = output.decode(errors="replace")
    assert code == 0, f"{' '.join(argv)} exited {code}:\n{text}"
    assert until is None, f"{until!r} never printed:\n{text}"
    return text


def sample_env(pbx: FakeAsterisk) -> dict[str, str]:
    env = dict(os.environ)
    env.update(AMI_HOST=pbx.host, AMI_PORT=str(pbx.port), AMI_USERNAME="admin", AMI_SECRET="amp111")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "examples")])
    env.pop("PYTHONSTARTUP", None)
    return env


@pytest.mark.parametrize("sample", of_kind("program"))
async def test_program_runs(sample: Sample, tmp_path: Path) -> None:
    path = write_page_modules(sample, tmp_path)
    async with FakeAsterisk(time_scale=0.1) as pbx:
        argv = [sys.executable, "-c", REDIRECT, str(path)]
        output = await run_program(argv, tmp_path, sample_env(pbx), sample.options.get("until"))
    print(output)
    assert "Traceback" not in output, output
    assert_shows(sample, output)


# -- tests shown on the pages ---------------------------------------------------------------


@pytest.mark.parametrize("sample", of_kind("pytest"))
def test_pytest_sample_passes(sample: Sample, tmp_path: Path) -> None:
    module = tmp_path / (sample.filename or "test_sample.py")
    if not module.name.startswith("test_"):
        module = tmp_path / "test_sample.py"
    module.write_text(sample.code, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "examples")]))
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_mode=auto",
    ]
    done = subprocess.run(
        [*argv, str(module)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout


# -- signatures -----------------------------------------------------------------------------


def documented_object(name: str) -> Callable[..., Any]:
    """``Client``, ``client.send_action``, ``ami_async.connect``... -> the real object."""
    import ami_async.testing

    parts = name.split(".")
    if parts[0] == "ami_async":
        parts = parts[1:]
    if parts[0] == "client":
        parts[0] = "Client"
    owner = ami_async if hasattr(ami_async, parts[0]) else ami_async.testing
    obj: Any = owner
    for part in parts:
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def parameters_of(text: str) -> tuple[str, list[tuple[str, str, object]]]:
    """The name and (name, kind, default) list of a documented signature."""
    text = re.sub(r"^\s*await\s+", "", " ".join(text.split()))
    name, rest = text.split("(", 1)
    args, _, _ = rest.rpartition(")")
    node = ast.parse(f"def f({args}): ...").body[0]
    assert isinstance(node, ast.FunctionDef)
    a = node.args
    params: list[tuple[str, str, object]] = []
    positional = [(p, "POSITIONAL_ONLY") for p in a.posonlyargs]
    positional += [(p, "POSITIONAL_OR_KEYWORD") for p in a.args]
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(
        a.defaults
    )
    for (param, kind), default in zip(positional, defaults, strict=True):
        params.append((param.arg, kind, evaluate(default)))
    if a.vararg:
        params.append((a.vararg.arg, "VAR_POSITIONAL", inspect.Parameter.empty))
    for param, kw_default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        params.append((param.arg, "KEYWORD_ONLY", evaluate(kw_default)))
    if a.kwarg:
        params.append((a.kwarg.arg, "VAR_KEYWORD", inspect.Parameter.empty))
    return name.strip(), params


def evaluate(node: ast.expr | None) -> object:
    if node is None:
        return inspect.Parameter.empty
    return eval(compile(ast.Expression(node), "<default>", "eval"), {})


@pytest.mark.parametrize("sample", of_kind("signature"))
def test_documented_signature_is_the_real_one(sample: Sample) -> None:
    name, documented = parameters_of(sample.code)
    real = [
        (p.name, p.kind.name, p.default)
        for p in inspect.signature(documented_object(name)).parameters.values()
        if p.name != "self"
    ]
    assert documented == real, f"{sample.id}: {name}"


# -- shell samples ----------------------------------------------------------------------------


def shell_commands(sample: Sample) -> list[str]:
    """The commands of a shell block (in a ``console`` block, the ``$`` lines)."""
    commands = []
    for line in sample.code.splitlines():
        if sample.language == "console":
            if not line.startswith("$ "):
                continue  # what the command printed
            line = line[2:]
        line = line.split(" #", 1)[0].strip()
        if line:
            commands.append(line)
    return commands


@pytest.mark.parametrize("sample", of_kind("shell"))
async def test_shell_sample_runs(sample: Sample, tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    async with FakeAsterisk() as pbx:
        env = sample_env(pbx)
        env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
        for command in shell_commands(sample):
            argv = shlex.split(command)
            if argv[0] in ("python", "python3"):
                argv[0] = sys.executable
            output = await run_program(argv, ROOT, env, sample.options.get("until"))
            print(output)
            assert_shows(sample, output)

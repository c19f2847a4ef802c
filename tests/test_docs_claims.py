"""The API reference and the pages' claims that are not code samples, checked against the code."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_docs import PAGES, ROOT, SAMPLES, parameters_of

import ami_async
import ami_async.actions
from ami_async.testing import FakeAsterisk

SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|mod|data|obj|const|ref|term):`")


def docstrings() -> list[tuple[str, int, str]]:
    """Every docstring of the package and the examples, attribute docstrings too."""
    found = []
    for path in sorted([*(ROOT / "ami_async").rglob("*.py"), *(ROOT / "examples").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            body = getattr(node, "body", None)
            if not isinstance(body, list):
                continue
            for statement in body:
                if (
                    isinstance(statement, ast.Expr)
                    and isinstance(statement.value, ast.Constant)
                    and isinstance(statement.value.value, str)
                ):
                    name = str(path.relative_to(ROOT))
                    found.append((name, statement.lineno, statement.value.value))
    return found


def test_no_sphinx_roles_in_docstrings() -> None:
    """mkdocstrings renders Markdown: a Sphinx role (:class:`X`) would show as raw text."""
    assert len(docstrings()) > 300
    roles = [
        f"{name}:{line}: {SPHINX_ROLE.search(text).group(0)}"  # type: ignore[union-attr]
        for name, line, text in docstrings()
        if SPHINX_ROLE.search(text)
    ]
    assert roles == [], "write `X` instead of Sphinx roles:\n" + "\n".join(roles)


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as `mkdocs build --strict` makes it (on 3.13 with the docs extra, as CI does)."""
    if sys.version_info < (3, 13):
        pytest.skip("CI builds the docs on Python 3.13 only (.ci/run)")
    pytest.importorskip("mkdocstrings_handlers.python")
    site = tmp_path_factory.mktemp("site")
    argv = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return site


REFERENCE_MUST_SHOW = [
    # Helpers inherited from ActionsMixin.
    "Client.originate",
    "Client.ping",
    "Client.command",
    "Client.core_show_channels",
    "Client.db_get",
    "Client.db_put",
    "Client.hangup",
    "Client.queue_status",
    # Attributes.
    "Client.ami_version",
    "Client.banner",
    "Client.reconnects",
    "Client.list_completions",
    # Subscriptions, the testing helpers.
    "Subscription.get",
    "testing.FakeAsterisk.emit",
    "testing.FaultProxy",
]


def reference_labels(site: Path) -> dict[str, list[str]]:
    """Each object of the API reference page -> its labels ("async", "property"...)."""
    html = (site / "reference" / "index.html").read_text(encoding="utf-8")
    parts = re.split(r'id="ami_async\.([\w.]+)"', html)
    return {
        name: re.findall(r'doc-label-([\w-]+)"', body)
        for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def test_reference_shows_inherited_helpers_and_attributes(built_site: Path) -> None:
    labels = reference_labels(built_site)
    missing = [name for name in REFERENCE_MUST_SHOW if name not in labels]
    assert missing == [], f"the API reference lacks {missing}"
    assert "async" in labels["Client.originate"]
    # Called without await: an async iterator / a subscription, not a coroutine.
    assert "async" not in labels["Client.stream"]
    assert "async" not in labels["Client.events"]


def test_rendered_pages_show_no_sphinx_roles(built_site: Path) -> None:
    pages = sorted(built_site.rglob("*.html"))
    role = re.compile(SPHINX_ROLE.pattern.replace("`", "(?:`|<code>)"))
    shown = [str(p.relative_to(built_site)) for p in pages if role.search(p.read_text())]
    assert shown == []


def raw_fences(page: str) -> list[str]:
    """Text around each ```` ``` ```` shown as prose: a code fence Markdown did not read."""
    prose = re.sub(r"<(script|pre|code)\b.*?</\1>", "", page, flags=re.S)
    text = re.sub(r"<[^>]+>", "", prose)
    return [text[max(0, m.start() - 40) : m.end() + 20] for m in re.finditer("```", text)]


def test_rendered_pages_show_no_raw_code_fences(built_site: Path) -> None:
    shown = {
        str(p.relative_to(built_site)): raw
        for p in sorted(built_site.rglob("*.html"))
        if (raw := raw_fences(p.read_text(encoding="utf-8")))
    }
    assert shown == {}


def test_every_uvicorn_line_has_a_graceful_shutdown_timeout() -> None:
    """The pages leave event streams open (`curl -N`): without the option Ctrl-C waits for them."""
    pages = [*PAGES, ROOT / "examples" / "fastapi_app.py"]
    lines = [
        f"{page.relative_to(ROOT)}: {line.strip()}"
        for page in pages
        for line in page.read_text(encoding="utf-8").splitlines()
        if re.search(r"\buvicorn examples\.fastapi_app:app( |$)", line)
    ]
    assert len(lines) >= 3
    assert [line for line in lines if "--timeout-graceful-shutdown" not in line] == []


def test_samples_fit_the_page() -> None:
    """docs/css/wide.css shows 100 columns (the project's line length) without scrolling."""
    long = [
        f"{sample.id} +{n}"
        for sample in SAMPLES
        for n, line in enumerate(sample.code.splitlines(), 1)
        if len(line) > 100
    ]
    assert long == []


def helper_rows() -> list[tuple[str, str]]:
    """(id, signature) of each row of docs/api.md's helper table (``| `ping()` | Ping |``)."""
    page = ROOT / "docs" / "api.md"
    rows = []
    for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        match = re.match(r"\| `(\w+\(.*?\))` \| (?:async )?`[A-Z]", line)
        if match:
            rows.append((f"docs/api.md:{n}", match.group(1)))
    return rows


@pytest.mark.parametrize(("where", "text"), helper_rows(), ids=[r[0] for r in helper_rows()])
def test_documented_helper_signature_is_the_real_one(where: str, text: str) -> None:
    """The helper table leaves out ``timeout=`` (each helper takes it); the rest must match."""
    name, documented = parameters_of(text)
    method = getattr(ami_async.Client, name)
    named = {param[0] for param in documented}  # originate's timeout is its ring time
    real = [
        (p.name, p.kind.name, p.default)
        for p in inspect.signature(method).parameters.values()
        if p.name != "self" and (p.name != "timeout" or "timeout" in named)
    ]
    assert documented == real, f"{where}: {name}"
    assert "timeout" in inspect.signature(method).parameters


def test_every_helper_is_in_the_table() -> None:
    documented = {parameters_of(text)[0] for _, text in helper_rows()}
    helpers = {
        name
        for name, value in vars(ami_async.actions.ActionsMixin).items()
        if inspect.iscoroutinefunction(value) and not name.startswith("_")
    }
    assert helpers - documented == set()
    assert len(documented) >= 20


def test_where_things_live_names_real_modules() -> None:
    """docs/api.md's module table: each module exists and holds what the row says it does."""
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = page.split("## Where things live", 1)[1]
    rows = re.findall(r"^\| `(ami_async\.[\w.]+)` \| (.*) \|$", section, re.M)
    assert len(rows) >= 6
    for module_name, what in rows:
        module = importlib.import_module(module_name)
        for name in re.findall(r"`([A-Z]\w+)`", what):
            assert hasattr(module, name), f"{module_name} has no {name}"
    for module_name in re.findall(r"`(ami_async\.[\w.]+)`", section):
        importlib.import_module(module_name)


async def test_fake_answers_every_action_the_testing_guide_lists() -> None:
    page = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    paragraph = page.split("Out of the box it answers these actions", 1)[1].split("\n\n", 1)[0]
    listed = re.findall(r"`([A-Z][A-Za-z]+)`", paragraph.split("Any other action", 1)[0])
    assert len(listed) >= 20
    async with (
        FakeAsterisk() as pbx,
        ami_async.connect(
            pbx.host, pbx.port, username="admin", secret="amp111", ping_interval=None
        ) as ami,
    ):
        unknown = await ami.send_action("NoSuchAction", check=False)
        assert "Invalid/unknown command" in (unknown.message or "")
        for name in listed:
            if name in ("Login", "Logoff"):
                continue  # the client's own login; logging off would end the test
            resp = await ami.send_action(name, check=False)
            assert "Invalid/unknown command" not in (resp.message or ""), name


def test_testing_guide_lists_the_lab_users_as_the_fake_knows_them() -> None:
    users = FakeAsterisk().accounts  # the defaults: the lab's users
    page = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    table = page.split("### Users", 1)[1].split("\n\n")[2]
    pairs = dict(re.findall(r"`(\w+)` / `(\w+)`", table))
    assert pairs == {name: user.secret for name, user in users.items()}
    assert users["monitor"].write == "" and users["callonly"].read == "call"
    assert users["single"].allow_multiple_login is False


def test_every_test_honours_ami_fixtures_as_the_readme_says() -> None:
    """The README: the tests read ../shared/fixtures, or the directory AMI_FIXTURES names."""
    assert "set\n`AMI_FIXTURES` to use another directory" in (ROOT / "README.md").read_text()
    own = re.compile(r'"shared"\s*/\s*"fixtures"')
    found = [
        path.name
        for path in sorted((ROOT / "tests").glob("*.py"))
        if path.name != "_fixtures.py" and own.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []

"""Issue 13, item 1 under attack: ``--check`` catches a hand edit of any generated file,
and says clearly when it has no catalogue to read."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "catalogue"
GENERATED = (
    "ami_async/catalogue/data.json",
    "ami_async/catalogue/_actions.py",
    "ami_async/catalogue/events.py",
    "docs/catalogue.md",
)


def run_check(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(root / "tools" / "gen_catalogue.py"), "--check", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The script and the package in a tree of their own (the checkout stays untouched)."""
    root = tmp_path_factory.mktemp("repo")
    shutil.copytree(ROOT / "tools", root / "tools")
    shutil.copytree(
        ROOT / "ami_async", root / "ami_async", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "catalogue.md", root / "docs" / "catalogue.md")
    assert run_check(root, "--source", str(SOURCE)).returncode == 0  # as committed: current
    return root


@pytest.mark.parametrize("generated", GENERATED)
def test_check_fails_when_a_generated_file_is_edited(copy: Path, generated: str) -> None:
    path = copy / generated
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b"Hangup", b"Hangups", 1))
        proc = run_check(copy, "--source", str(SOURCE))
        assert proc.returncode == 1
        assert generated in proc.stderr
    finally:
        path.write_bytes(original)


def test_check_without_a_catalogue_says_so(tmp_path: Path) -> None:
    proc = run_check(ROOT, "--source", str(tmp_path))
    assert proc.returncode == 2
    assert "no ami-catalogue.json" in proc.stderr and "Traceback" not in proc.stderr


def test_reference_page_has_no_stray_markdown() -> None:
    """Outside code spans, a lone ``*`` starts italics (``*channel, Dest*channel`` did) and
    ``<none>`` is an HTML tag the browser hides (Ping's privilege did)."""
    page = (ROOT / "docs" / "catalogue.md").read_text(encoding="utf-8")
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert len(rows) > 300
    for row in rows:
        prose = re.sub(r"`[^`]*`", "", row).replace("**", "")
        assert re.search(r"(?<!\\)\*", prose) is None, row
        assert "<" not in prose and ">" not in prose, row
    ping = next(row for row in rows if row.startswith("| `Ping` "))
    assert "`<none>`" in ping
    dial = next(row for row in rows if row.startswith("| `DialBegin` "))
    assert "Dest\\*channel" in dial

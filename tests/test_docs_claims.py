"""The README and docs/ say true things about settings and commands.

Every ``SUMMIT_*`` variable they name is read by the code (a settings field or an environment
lookup), every command of the README's command table exists, and every ``--option`` it shows
for a command is one that command accepts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from assistant.cli import app
from assistant.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "eval" / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _settings_fields() -> set[str]:
    from api.settings import ApiSettings

    return set(Settings.model_fields) | set(ApiSettings.model_fields)


def _env_lookups() -> set[str]:
    """SUMMIT_* names the code reads directly (os.environ, typer envvar=..., getenv in C)."""
    names = set()
    paths = [p for folder in ("assistant", "api", "benchmarks") for p in (REPO / folder).glob("*.py")]
    for path in paths + sorted((REPO / "assistant" / "native").glob("*.c")):
        names |= set(re.findall(r"[\"'](SUMMIT_[A-Z0-9_]+)[\"']", path.read_text(encoding="utf-8")))
    return names


def test_every_documented_variable_is_read_by_the_code():
    known = {f"SUMMIT_{f.upper()}" for f in _settings_fields()} | _env_lookups()
    missing = {}
    for doc in DOCS:
        for name in set(re.findall(r"SUMMIT_[A-Z0-9_]*[A-Z0-9]", doc.read_text(encoding="utf-8"))):
            if name not in known:
                missing.setdefault(name, doc.name)
    assert not missing, missing


def _command_table() -> list[tuple[str, list[str]]]:
    """(command, options shown) for each row of the README's command table."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = []
    for cell in re.findall(r"^\| `summit ([^`]+)`", section, flags=re.M):
        words = cell.split()
        rows.append((words[0], re.findall(r"(--[a-z][a-z-]*)", cell)))
    return rows


def test_the_command_table_lists_real_commands_and_options():
    group = typer.main.get_command(app)
    assert hasattr(group, "commands")
    rows = _command_table()
    assert len(rows) >= 10
    for name, options in rows:
        command = group.commands.get(name)
        assert command is not None, f"README lists `summit {name}`, which does not exist"
        accepted = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        unknown = [o for o in options if o not in accepted]
        assert not unknown, f"`summit {name}` does not take {unknown}"


@pytest.mark.parametrize("option", ["--documents", "--index"])
def test_every_command_takes_the_folders(option):
    """The README: every command takes --documents and --index."""
    group = typer.main.get_command(app)
    lacking = [name for name, command in group.commands.items()
               if option not in {o for p in command.params for o in p.opts}]
    assert not lacking, lacking

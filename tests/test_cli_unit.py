"""The CLI's error path, in process: one line, the message as written, the error's exit code."""

from __future__ import annotations

import pytest
import typer

from assistant import cli
from assistant.errors import DocumentError, InvalidInputError


def test_an_error_is_one_line_with_its_brackets_kept(capsys):
    def fail():
        raise InvalidInputError("install 'summit-assistant[eval]' and see [1] or [red]this[/red]")

    with pytest.raises(typer.Exit) as exit_info:
        cli.run(fail)
    assert exit_info.value.exit_code == InvalidInputError.exit_code
    printed = capsys.readouterr().err.strip().splitlines()
    assert printed == ["error: install 'summit-assistant[eval]' and see [1] or [red]this[/red]"]


def test_a_document_error_names_the_file_and_exits_3(capsys):
    def fail():
        raise DocumentError("docs/[draft] note.md", "the front matter is not valid YAML")

    with pytest.raises(typer.Exit) as exit_info:
        cli.run(fail)
    assert exit_info.value.exit_code == 3
    assert "docs/[draft] note.md: the front matter" in capsys.readouterr().err

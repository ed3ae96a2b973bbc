"""Unit tests of the small shared pieces the layering introduced: the one LRU cache, the one set
of input limits, the CLI's settings errors and its defaults from settings."""

from __future__ import annotations

import pytest

from assistant.cache import LRU
from assistant.errors import InvalidInputError, SummitError
from assistant.requests import MAX_HISTORY, MAX_K, MAX_QUESTION_CHARS, validate


def test_lru_keeps_the_most_recent_and_size_zero_keeps_nothing():
    cache = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2
    cache.size = 1  # shrinking keeps the most recent item
    assert len(cache) == 1 and cache.get("c") == 3
    off = LRU(0)
    off.put("a", 1)
    assert off.get("a") is None and len(off) == 0
    assert cache.get("missing", "default") == "default"


@pytest.mark.parametrize(
    "question, history, k, mode, message",
    [
        (42, [], 5, "hybrid", "question must be a string"),
        ("   ", [], 5, "hybrid", "question is empty"),
        ("x" * (MAX_QUESTION_CHARS + 1), [], 5, "hybrid", f"the limit is {MAX_QUESTION_CHARS}"),
        ("ok?", "not a list", 5, "hybrid", "history must be a list"),
        ("ok?", ["q"] * (MAX_HISTORY + 1), 5, "hybrid", f"history has {MAX_HISTORY + 1} items"),
        ("ok?", ["x" * (MAX_QUESTION_CHARS + 1)], 5, "hybrid", "a history item is"),
        ("ok?", [], 0, "hybrid", f"k must be an integer from 1 to {MAX_K}"),
        ("ok?", [], True, "hybrid", "k must be an integer"),
        ("ok?", [], 5, "semantic", "mode must be one of"),
    ],
)
def test_the_library_refuses_bad_input_with_one_sentence(question, history, k, mode, message):
    with pytest.raises(InvalidInputError, match=message.replace("?", r"\?")):
        validate(question, history, k, mode)


def test_the_library_cleans_what_it_accepts():
    q, history, k, mode = validate("  Qui\x00 préside ?  ", ["  Où ?  ", "   "], 3, "dense")
    assert q == "Qui  préside ?" and history == ["Où ?"] and (k, mode) == (3, "dense")


def test_a_bad_setting_is_one_line_naming_the_variable(monkeypatch):
    from assistant import cli

    monkeypatch.setenv("SUMMIT_TOP_K", "50")
    with pytest.raises(SummitError) as info:
        cli.make_settings(None, None)
    assert str(info.value) == "invalid settings: SUMMIT_TOP_K: Input should be less than or equal to 20"

    from api.settings import ApiSettings

    monkeypatch.setenv("SUMMIT_MAX_BODY_BYTES", "10")
    with pytest.raises(ValueError) as raw:
        ApiSettings()
    message = str(cli.settings_error(raw.value))
    assert "\n" not in message and message.startswith("invalid settings: SUMMIT_MAX_BODY_BYTES")


def test_summit_ask_takes_k_and_mode_from_the_settings(monkeypatch, tmp_path):
    """SUMMIT_TOP_K / SUMMIT_MODE are the CLI's defaults, as the README says."""
    from typer.testing import CliRunner

    from assistant import cli

    seen = {}

    class Stub:
        def ask(self, question, history, k, mode):
            seen.update(k=k, mode=mode)
            raise SummitError("stop here")

    monkeypatch.setattr(cli, "load_assistant", lambda settings, **kw: Stub())
    monkeypatch.setenv("SUMMIT_TOP_K", "2")
    monkeypatch.setenv("SUMMIT_MODE", "lexical")
    result = CliRunner().invoke(cli.app, ["ask", "Qui ?", "--documents", str(tmp_path), "--index", str(tmp_path / "i")])
    assert result.exit_code == 1 and seen == {"k": 2, "mode": "lexical"}
    result = CliRunner().invoke(cli.app, ["ask", "Qui ?", "--k", "4", "--mode", "dense", "--documents", str(tmp_path)])
    assert seen == {"k": 4, "mode": "dense"}


def test_a_build_reads_the_documents_before_any_model_loads(tmp_path):
    """A bad document fails the build at once: the encoders are not even loaded."""
    from assistant.errors import DocumentError
    from assistant.service import Assistant
    from assistant.settings import Settings

    from .fakes import FakeEmbedder, write_corpus

    class Refusing(FakeEmbedder):
        def load(self, *, wait: bool = True):
            raise AssertionError("the model was loaded before the documents were checked")

    write_corpus(tmp_path / "docs", {"ok.md": "---\ntitle: T\nsource: S\n---\nUne phrase.\n", "bad.md": "pas de front matter"})
    assistant = Assistant(Settings(documents_dir=tmp_path / "docs", index_dir=tmp_path / "index", annotate=False),
                          embedder=Refusing())
    with pytest.raises(DocumentError, match="bad.md"):
        assistant.build()
    with pytest.raises(DocumentError, match="bad.md"):
        assistant.load()
    assert not (tmp_path / "index" / "current").exists()


def test_serve_refuses_a_bad_server_setting_in_one_line(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import api.server
    from assistant import cli

    monkeypatch.setattr(api.server, "run_server", lambda *a, **k: pytest.fail("the server started"))
    monkeypatch.setenv("SUMMIT_MAX_BODY_BYTES", "10")
    result = CliRunner().invoke(cli.app, ["serve", "--documents", str(tmp_path), "--index", str(tmp_path / "i")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid settings: SUMMIT_MAX_BODY_BYTES"), result.output

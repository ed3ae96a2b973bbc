"""`summit eval` and `summit fit` on their own indexes, in process with stand-ins for the models
and the fitting: their indexes are rebuilt when built with other settings (a user's own index is
not), `fit --cv` prints held-out figures and writes no weights, and `fit` writes the weights file
of its configuration (with or without latent terms)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant import cli, fitting, scoring
from assistant.cli import app
from assistant.errors import SummitError

ROOT = Path(__file__).resolve().parents[1]
EVAL = ["--splits", str(ROOT / "eval" / "splits.json"), "--corpus", str(ROOT / "eval" / "corpus"),
        "--documents", str(ROOT / "documents")]


class Stop(SummitError):
    exit_code = 9


def test_eval_rebuilds_its_own_index_but_not_a_users(monkeypatch, tmp_path):
    asked = []

    def load_assistant(settings, *, rebuild="stale", one_shot=False):
        asked.append(rebuild)
        raise Stop("stop here")

    monkeypatch.setattr(cli, "load_assistant", load_assistant)
    assert CliRunner().invoke(app, ["eval", "--split", "test", *EVAL]).exit_code == 9
    assert CliRunner().invoke(app, ["eval", "--split", "test", *EVAL, "--index", str(tmp_path / "mine")]).exit_code == 9
    assert asked == ["any", "stale"]


class FakeIndex:
    def document_list(self):
        return [{"doc_id": "a"}]

    def document(self, doc_id):
        return {"text": "Un texte inventé."}

    def counts(self):
        return {"documents": 1, "chunks": 1, "sentences": 1}


@pytest.fixture
def fit_env(monkeypatch, tmp_path):
    """fit with its models, its assistants and the fitting replaced; what they were given."""
    seen = {"rebuild": [], "saved": []}

    class Encoders:
        def load(self):
            return self

    class FakeAssistant:
        def __init__(self, settings, embedder=None):
            self.index = FakeIndex()

        def load(self, *, rebuild="stale", progress=None):
            seen["rebuild"].append(rebuild)
            return self

    from assistant import embedding, service

    monkeypatch.setattr(embedding.EncoderSet, "from_settings", classmethod(lambda cls, settings, **kw: Encoders()))
    monkeypatch.setattr(service, "Assistant", FakeAssistant)
    monkeypatch.setattr(fitting, "cross_validate", lambda runs, **kw: {"folds": len(runs), "sentence": {"top1": 0.5}})
    monkeypatch.setattr(fitting, "fit", lambda runs, **kw: ("the weights", {"threshold": 0.2}))
    monkeypatch.setattr(scoring, "save_weights", lambda weights, path: seen["saved"].append((weights, Path(path))) or Path(path))
    return seen, ["fit", *EVAL, "--index", str(tmp_path / "idx")]


def test_fit_cv_prints_held_out_figures_and_writes_nothing(fit_env):
    seen, args = fit_env
    result = CliRunner().invoke(app, [*args, "--cv"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"folds": 3, "sentence": {"top1": 0.5}}
    assert seen["saved"] == [] and seen["rebuild"] == ["any", "any", "any"]  # fit's three corpora, its own


@pytest.mark.parametrize("latent, expected", [("true", scoring.WEIGHTS_FILE), ("false", scoring.WEIGHTS_NO_LATENT_FILE)])
def test_fit_writes_the_weights_of_its_configuration(fit_env, monkeypatch, latent, expected):
    seen, args = fit_env
    monkeypatch.setenv("SUMMIT_LATENT_TERMS", latent)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen["saved"] == [("the weights", expected)]

"""BEIR interop: reading, writing, corpus -> documents, scoring, export; the real model only in
the tests marked integration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks import beir
from assistant.documents import load_documents
from assistant.errors import InvalidInputError
from assistant.evaluation import load_questions, norm, is_relevant
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "beir_small"


# ---- reading ---------------------------------------------------------------------------------


def test_load_fixture():
    data = beir.load_beir(FIXTURE)
    assert len(data.corpus) == 8
    assert data.corpus["vance speech"]["title"] == "Vance warns Europe against over-regulation"
    assert len(data.queries) == 6
    assert data.judged_queries() == ["q1", "q2", "q3", "q4", "q5"]  # q6 has no judgement
    assert data.qrels["q3"] == {"fr-invest": 2, "energy": 1}
    assert data.qrels["q5"] == {"history-1": 2, "summit/venue": 0}


def copy_fixture(tmp_path: Path) -> Path:
    dst = tmp_path / "ds"
    (dst / "qrels").mkdir(parents=True)
    for rel in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        (dst / rel).write_bytes((FIXTURE / rel).read_bytes())
    return dst


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "corpus.jsonl").unlink(), "missing corpus.jsonl"),
        (lambda d: (d / "queries.jsonl").unlink(), "missing queries.jsonl"),
        (lambda d: (d / "qrels" / "test.tsv").unlink(), "missing qrels/test.tsv"),
        (lambda d: (d / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n{broken\n'), "corpus.jsonl:2: not valid JSON"),
        (lambda d: (d / "queries.jsonl").write_text('{"text": "no id"}\n'), "'_id'"),
        (lambda d: (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tsummit/venue\n"), "test.tsv:2"),
        (lambda d: (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tsummit/venue\t0\n"), "judges none"),
        (lambda d: (d / "corpus.jsonl").write_text(""), "holds no documents"),
    ],
)
def test_load_beir_errors(tmp_path, damage, message):
    folder = copy_fixture(tmp_path)
    damage(folder)
    with pytest.raises(InvalidInputError, match=message):
        beir.load_beir(folder)


def test_load_beir_missing_folder(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        beir.load_beir(tmp_path / "nope")


def test_write_then_load_round_trip(tmp_path):
    corpus = [{"_id": "c1", "title": "T", "text": "Un texte."}, {"_id": "c2", "title": "", "text": "Another text."}]
    queries = [{"_id": "q1", "text": "quoi ?"}]
    beir.write_beir(tmp_path / "out", corpus, queries, [("q1", "c1", 1)])
    assert (tmp_path / "out" / "qrels" / "test.tsv").read_text().splitlines()[0] == "query-id\tcorpus-id\tscore"
    data = beir.load_beir(tmp_path / "out")
    assert data.corpus == {"c1": {"title": "T", "text": "Un texte."}, "c2": {"title": "", "text": "Another text."}}
    assert data.queries == {"q1": "quoi ?"} and data.qrels == {"q1": {"c1": 1}}


# ---- corpus -> documents -----------------------------------------------------------------------


def test_corpus_becomes_documents_the_normal_loader_reads(tmp_path):
    data = beir.load_beir(FIXTURE)
    mapping = beir.write_documents(data.corpus, tmp_path / "docs")
    assert sorted(mapping.values()) == sorted(data.corpus)
    docs, skipped = load_documents(tmp_path / "docs", [])
    assert not skipped and len(docs) == 8
    by_corpus_id = {mapping[d.doc_id]: d for d in docs}
    for cid, d in by_corpus_id.items():
        assert d.source == "BEIR"
        assert d.text == data.corpus[cid]["text"]
    assert by_corpus_id["fr-declaration"].language == "fr"
    assert by_corpus_id["fr-invest"].language == "fr"
    assert by_corpus_id["vance speech"].language == "en"
    assert by_corpus_id["summit/venue"].title == "Paris hosts the AI Action Summit"
    # no title: the first words of the text stand in
    assert by_corpus_id["energy"].title.startswith("France presents its nuclear-powered")


def test_document_markdown_escapes_front_matter(tmp_path):
    md = beir.document_markdown("d1", 'Title: with "quotes" and # hash', "Body.\n---\nMore body.")
    (tmp_path / "d1.md").write_text(md, encoding="utf-8")
    docs, _ = load_documents(tmp_path, [])
    assert docs[0].title == 'Title: with "quotes" and # hash'
    assert docs[0].doc_id == "d1"
    assert "More body." in docs[0].text


def test_empty_documents_are_left_out_and_text_less_ones_use_the_title(tmp_path):
    mapping = beir.write_documents({"a": {"title": "", "text": "  "}, "b": {"title": "Only a title", "text": ""}}, tmp_path)
    assert list(mapping.values()) == ["b"]
    docs, _ = load_documents(tmp_path, [])
    assert docs[0].text == "Only a title" and docs[0].language in ("en", "fr")
    with pytest.raises(InvalidInputError):
        beir.write_documents({"a": {"title": "", "text": ""}}, tmp_path / "none")


# ---- scoring with a fake search ----------------------------------------------------------------


def test_score_queries_with_a_perfect_and_a_chunky_ranker():
    data = beir.load_beir(FIXTURE)
    best = {qid: sorted(g, key=lambda d: -g[d]) for qid, g in data.qrels.items()}
    by_text = {text: qid for qid, text in data.queries.items()}

    def perfect(query, mode):
        # chunk-level ids: every document twice, as chunks of one document would come back
        return [f"chunk-of-{d}" for d in best[by_text[query]] for _ in range(2)]

    doc_map = {f"chunk-of-{d}": d for d in data.corpus}
    result = beir.score_queries(data, perfect, ["hybrid"], doc_map)
    assert result["modes"]["hybrid"] == {"ndcg@10": 1.0, "recall@10": 1.0, "mrr@10": 1.0}
    rows = result["per_query"]
    assert [r["query_id"] for r in rows] == ["q1", "q2", "q3", "q4", "q5"]
    assert rows[2]["ranked"] == ["fr-invest", "energy"]  # deduplicated, corpus ids
    assert rows[4]["relevant"] == ["history-1"]  # the 0-score judgement is not relevant

    def wrong_first(query, mode):
        return ["summit/venue", "mistral", *best[by_text[query]]]

    result = beir.score_queries(data, wrong_first, ["lexical"], None)
    m = result["modes"]["lexical"]
    assert m["recall@10"] == 1.0
    assert 0 < m["mrr@10"] < 1 and 0 < m["ndcg@10"] < 1


def test_score_queries_cuts_long_queries():
    data = beir.BeirData({"a": {"title": "", "text": "x"}}, {"q": "word " * 400}, {"q": {"a": 1}})
    seen = []
    beir.score_queries(data, lambda q, m: seen.append(q) or ["a"], ["dense"])
    assert len(seen[0]) <= beir.MAX_QUERY_CHARS


# ---- export ----------------------------------------------------------------------------------------


def test_export_of_the_repo_documents_and_gold_questions(tmp_path):
    settings = Settings(documents_dir=ROOT / "documents", extra_documents_dirs=[ROOT / "eval" / "corpus"])
    questions = load_questions(ROOT / "eval" / "corpus" / "questions" / "seed-gold.jsonl")
    summary = beir.export_beir(settings, questions, tmp_path / "export")
    data = beir.load_beir(tmp_path / "export")
    assert summary["corpus"] == len(data.corpus) > 0
    assert all("#" in cid for cid in data.corpus)  # chunk ids
    standalone = [q for q in questions if q.answerable and not q.history]
    assert summary["queries"] == len(data.judged_queries()) == len(standalone) - len(summary["skipped"]["no_relevant_chunk"])
    assert len(summary["skipped"]["unanswerable"]) == sum(not q.answerable for q in questions)
    assert summary["skipped"]["follow_up"] == [q.id for q in questions if q.answerable and q.history]
    by_id = {q.id: q for q in questions}
    for qid, judged in data.qrels.items():
        for cid in judged:
            assert is_relevant(data.corpus[cid]["text"], by_id[qid].evidence)
    # and no unjudged chunk holds the evidence
    for qid in data.judged_queries():
        holding = {cid for cid, d in data.corpus.items() if is_relevant(d["text"], by_id[qid].evidence)}
        assert holding == set(data.qrels[qid])
    row = json.loads((tmp_path / "export" / "queries.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(row) == {"_id", "text", "metadata"}


def test_export_beir_command(tmp_path):
    from assistant.cli import app

    result = CliRunner().invoke(app, ["export-beir", str(tmp_path / "out"), "--questions", str(ROOT / "eval" / "corpus" / "questions" / "seed-dev.jsonl"),
                                      "--documents", str(ROOT / "documents")])
    assert result.exit_code == 0, result.output
    assert "passages" in result.output
    assert beir.load_beir(tmp_path / "out").judged_queries()


def test_export_beir_command_takes_index_like_the_others(tmp_path, monkeypatch):
    from assistant.cli import app

    args = ["export-beir", str(tmp_path / "out"), "--questions", str(ROOT / "eval" / "corpus" / "questions" / "seed-dev.jsonl"),
            "--documents", str(ROOT / "documents")]
    result = CliRunner().invoke(app, [*args, "--index", str(tmp_path / "index")])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("SUMMIT_INDEX_DIR", str(tmp_path / "index-from-env"))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "index").exists() and not (tmp_path / "index-from-env").exists()  # not read, not made
    assert "--index" in CliRunner().invoke(app, ["export-beir", "--help"]).output


def test_export_beir_command_missing_questions(tmp_path):
    from assistant.cli import app

    result = CliRunner().invoke(app, ["export-beir", str(tmp_path / "out"), "--questions", str(tmp_path / "none.jsonl")])
    assert result.exit_code == 2 and "not found" in result.output


def test_eval_command_bad_beir_folder_exits_before_loading(tmp_path):
    from assistant.cli import app

    result = CliRunner().invoke(app, ["eval", "--beir", str(tmp_path)])
    assert result.exit_code == 2 and "missing corpus.jsonl" in result.output


# ---- with the real model ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedder():
    from assistant.embedding import Embedder

    settings = Settings()
    return Embedder(settings.model, settings.threads).load()


@pytest.mark.integration
def test_evaluate_beir_on_the_fixture(embedder):
    result = beir.evaluate_beir(FIXTURE, Settings(), ["hybrid", "dense", "lexical"], embedder=embedder)
    assert result["corpus"] == 8 and result["indexed"] == 8 and result["queries"] == 5
    assert set(result["modes"]) == {"hybrid", "dense", "lexical"}
    for row in result["per_query"]:
        assert set(row["ranked"]) <= set(beir.load_beir(FIXTURE).corpus)  # mapped back to corpus ids
        assert len(row["ranked"]) == len(set(row["ranked"]))
    # eight short documents, one topic each: the right one comes first for most queries
    assert result["modes"]["hybrid"]["ndcg@10"] >= 0.6
    assert result["modes"]["hybrid"]["mrr@10"] >= 0.6


@pytest.mark.integration
def test_round_trip_export_then_evaluate(tmp_path, embedder):
    settings = Settings(documents_dir=ROOT / "documents")
    summary = beir.export_beir(settings, load_questions(ROOT / "eval" / "corpus" / "questions" / "seed-gold.jsonl"), tmp_path / "export")
    result = beir.evaluate_beir(tmp_path / "export", settings, ["hybrid", "lexical"], embedder=embedder)
    assert result["corpus"] == summary["corpus"] == result["indexed"]
    assert result["queries"] == summary["queries"]
    chunk_ids = set(beir.load_beir(tmp_path / "export").corpus)
    assert all(set(r["ranked"]) <= chunk_ids for r in result["per_query"])
    # the gold questions find their passage in the top 10 most of the time
    assert result["modes"]["hybrid"]["recall@10"] >= 0.5
    assert result["modes"]["hybrid"]["ndcg@10"] >= 0.3

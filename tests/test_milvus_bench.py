"""`summit bench --store milvus` on tiny inputs: the figures it reports are there and consistent
(never timing thresholds: speed numbers come from running the bench)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from benchmarks import bench  # noqa: E402
from assistant import index as faiss_index  # noqa: E402
from benchmarks import milvus_bench as mb  # noqa: E402
from assistant import milvus_store as ms  # noqa: E402
from assistant.errors import InvalidInputError  # noqa: E402
from assistant.service import Assistant  # noqa: E402

from .milvus_fakes import ARTICLES, encoders, fake_annotate, settings, write_articles  # noqa: E402


def test_exact_top_k_is_brute_force():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(1234, 16)).astype(np.float32)
    queries = rng.normal(size=(7, 16)).astype(np.float32)
    want = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    np.testing.assert_array_equal(mb.exact_top_k(vectors, queries, 10, block=100), want)


def test_replica_memory_estimate_is_bounded_where_it_should_be():
    small, big = mb.replica_memory_estimate(1_000_000), mb.replica_memory_estimate(10_000_000)
    for capped in ("vocab_vectors", "record_caches", "vector_caches", "tf_cache"):
        assert big["bytes"][capped] == small["bytes"][capped], capped
    assert big["bytes"]["idf_table"] > small["bytes"]["idf_table"]  # grows, at 12 bytes a term
    assert big["bytes"]["idf_table"] == 12 * big["terms"]
    one_m = mb.replica_memory_estimate(1_000_000, vocab_max=50_000)
    assert one_m["bytes"]["vocab_vectors"] == 50_000 * 512 * 4
    assert one_m["total_mb"] == round(sum(one_m["bytes"].values()) / 2**20, 1)


@pytest.mark.slow  # a milvus-lite server
def test_scale_one_reports_recall_memory_and_rates():
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(300, 32)).astype(np.float32)
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    queries = pool[:5] + 0.01
    units = [f"La phrase numéro {i} parle du sommet et de la fondation {i % 7}." for i in range(200)]
    row = mb._scale_one(600, pool, units, queries, ["fondation", "sommet de Paris"], 10, 0, True, lambda m: None)
    assert row["n"] == 600 and row["index_type"] == "FLAT"
    assert row["dense"]["recall_at_10"] == 1.0  # FLAT is exact
    assert row["rows_per_s"] > 0 and row["build_rows_per_s"] > 0 and row["disk_mb"] > 0
    assert row["server_memory_mb"]["rss_mb"] > 0 and row["bm25_ms"]["n"] == 2
    assert row["replica_memory"]["passages"] == 600


@pytest.mark.slow  # embedded Milvus (milvus-lite)
def test_bench_compare_on_a_small_corpus(tmp_path, monkeypatch):
    monkeypatch.setattr(ms, "annotate", fake_annotate)
    monkeypatch.setattr(faiss_index, "annotate", fake_annotate)
    docs = write_articles(tmp_path / "docs")
    s = settings(tmp_path, docs, store="faiss", answer_cache_size=0)
    faiss = Assistant(s, embedder=encoders()).load()
    questions = [{"id": "a", "question": "Combien pour la fondation ?", "history": []},
                 {"id": "b", "question": "Et qui accueillera le prochain ?", "history": ["Who will host the next summit?"]}]
    out = mb.bench_compare(s, faiss, questions, 1, lambda m: None)
    assert out["counts"]["documents"] == len(ARTICLES) and out["uri_kind"] == "lite"
    assert out["same_answers"] == {"questions": 2, "identical": 2}
    for store in ("faiss", "milvus"):
        assert out[store]["latency_ms"]["n"] == 2 and set(out["primitives"][store]) == {"dense_chunks_k30", "dense_sentences_k60", "lexical_k30"}
    assert out["replica_memory"]["this_corpus"]["vocab_words"] > 0
    rows = mb.summary_rows({"milvus": out})
    assert any("identical answers" in r[1] for r in rows)


def test_bench_sections_and_store_option():
    assert bench.parse_sections("all") == ("inprocess", "http", "startup", "build", "scale")
    assert bench.parse_sections("milvus_scale,milvus") == ("milvus", "milvus_scale")
    with pytest.raises(InvalidInputError):
        bench.parse_sections("milvusx")
    from typer.testing import CliRunner

    from assistant.cli import app

    result = CliRunner().invoke(app, ["bench", "--store", "cassandra"])
    assert result.exit_code != 0 and "--store must be faiss or milvus" in result.output

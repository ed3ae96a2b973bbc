"""`summit bench --store milvus`: the Milvus store against the FAISS store (docs/milvus.md).

Sections:

- ``milvus``: the same corpus in both stores (the Milvus one built from the FAISS assistant's
  encoders into a private milvus-lite file, or ``<prefix>_bench`` collections on a configured
  server, dropped afterwards): warm in-process ``ask`` latency p50/p95 over the gold questions,
  the store primitives (dense search of passages and sentences, lexical search), whether the
  answers are the same, the build time, and what a replica holds in memory.
- ``milvus_scale``: passage collections of growing size on a milvus-lite server process (the
  synthetic corpora of ``bench.bench_scale``: real text recombined, vectors made from a pool
  embedded with the real model): insert rate with Milvus computing BM25, index time, server
  memory and disk, dense latency and recall@10 against exact search (an efSearch sweep), BM25
  latency; plus the memory a replica needs at that size and notes on what changes on a cluster.

Figures are measured, never asserted (tests/test_milvus_bench.py checks the shapes on tiny
sizes).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from benchmarks.bench import latency_summary, rate, recall_at_k, synthetic_passages, synthetic_vectors
from benchmarks.servers import LiteServer

Log = Callable[[str], None]

CLUSTER_NOTES = [
    "milvus-lite 3.x is pure Python: every search builds a row mask in Python (O(rows) per segment) and inserts run at "
    "~1-2k rows/s, so its latency grows with the corpus; it is for one machine, development and CI.",
    "Milvus standalone/cluster runs the same collections and calls: search is C++ (knowhere HNSW) on query nodes, "
    "growing segments are indexed in the background, and BM25 uses the real analyzer (tantivy: asciifolding + French "
    "stemmer), which milvus-lite ignores (the store re-scores BM25 candidates with its own stems, so rankings match).",
    "On a cluster, memory moves from the replicas to the query nodes: ~4 bytes x (512 + 384) per passage and per "
    "sentence for the two encoders' vectors (x1.3 for HNSW graphs), halved with HNSW_SQ (SUMMIT_MILVUS_INDEX), or on "
    "disk with DISKANN; replicas keep only the bounded tables (replica_memory below).",
    "Latency on a cluster adds one network round trip per store call (about 8 per question: 2 encoders x passages + "
    "sentences, BM25, records, vectors); query-node replicas (load replica_number) scale reads; inserts scale with "
    "data nodes and are batched (BATCH_ROWS).",
]


# ---- helpers -----------------------------------------------------------------------------------


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, block: int = 200_000) -> np.ndarray:
    """Exact inner-product top-k ids of each query (ground truth), in blocks."""
    best_s = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_i = np.full((len(queries), k), -1, dtype=np.int64)
    for a in range(0, len(vectors), block):
        s = queries @ vectors[a : a + block].T
        s = np.concatenate([best_s, s], axis=1)
        ids = np.concatenate([best_i, np.broadcast_to(np.arange(a, a + s.shape[1] - k), (len(queries), s.shape[1] - k))], axis=1)
        top = np.argpartition(-s, k - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(s, top, axis=1)
        best_i = np.take_along_axis(ids, top, axis=1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, axis=1)


def replica_memory_estimate(passages: int, *, vocab_max: int = 100_000, dim: int = 512, cache_rows: int = 100_000,
                            vector_cache_rows: int = 20_000, dims: Sequence[int] = (512, 384),
                            passages_per_document: float = 10.0, terms: int | None = None) -> dict[str, Any]:
    """What a replica of the Milvus store holds at a corpus size, by table (bytes). The vocabulary
    and the caches are capped; the idf table and the document list grow with the corpus."""
    sentences = int(passages * 2.4)
    # Distinct terms by Heaps' law V = K * tokens^0.55, with 33 index terms a passage and K = 17:
    # anchored on the eval corpus (211 passages, 6.9k term occurrences, 2,177 distinct terms),
    # the exponent assumed (0.5-0.6 for news text); ~0.23M terms at 1M passages.
    terms = terms if terms is not None else int(17 * (33 * passages) ** 0.55)
    documents = int(passages / passages_per_document)
    words = min(vocab_max, int(1.26 * terms))  # surface words per term on the eval corpus: 2,743 / 2,177
    table = {
        "vocab_vectors": words * dim * 4,
        "vocab_words": words * 60,
        "idf_table": terms * 12,
        "record_caches": 2 * min(cache_rows, max(passages, sentences)) * 900,
        "vector_caches": 2 * vector_cache_rows * (sum(dims) * 4 + 100),
        "tf_cache": min(cache_rows, passages) * 400,
        "document_list": documents * 400,
    }
    return {"passages": passages, "sentences": sentences, "terms": terms, "documents": documents,
            "bytes": table, "total_mb": round(sum(table.values()) / 2**20, 1)}


# ---- section: the two stores on the same corpus ------------------------------------------------


def _primitive_latency(store, encoders, questions: list[dict], repeats: int) -> dict[str, Any]:
    from assistant.retrieval import Retriever

    retriever = Retriever(store, encoders)
    queries = [retriever.analyze(q["question"]) for q in questions]
    out: dict[str, list[float]] = {"dense_chunks_k30": [], "dense_sentences_k60": [], "lexical_k30": []}
    for _ in range(repeats):
        for q in queries:
            for e in range(store.n_encoders):
                t = time.perf_counter()
                store.dense(e, "chunk", q.vectors[e], 30)
                out["dense_chunks_k30"].append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                store.dense(e, "sentence", q.vectors[e], 60)
                out["dense_sentences_k60"].append((time.perf_counter() - t) * 1000)
            w = q.term_weights()
            if w:
                t = time.perf_counter()
                store.lexical(w, 30, [x.word for x in q.words])
                out["lexical_k30"].append((time.perf_counter() - t) * 1000)
    return {k: latency_summary(v) for k, v in out.items()}


def bench_compare(settings, faiss_assistant, questions: list[dict], repeats: int, log: Log) -> dict[str, Any]:
    from assistant import milvus_store as ms
    from benchmarks.bench import bench_inprocess
    from assistant.service import Assistant

    kind, uri = ms.resolve_uri(settings)
    tmp = Path(tempfile.mkdtemp(prefix="summit-bench-milvus-"))
    if kind == "server":
        update = {"milvus_prefix": f"{settings.milvus_prefix}_bench"}
    else:
        update = {"milvus_uri": str(tmp / "bench.db")}
    m_settings = settings.model_copy(update={**update, "store": "milvus", "answer_cache_size": 0, "milvus_grace_seconds": 0.0})
    milvus = Assistant(m_settings, embedder=faiss_assistant.embedder)
    try:
        log(f"milvus: building the same corpus into {'prefix ' + update['milvus_prefix'] if kind == 'server' else update['milvus_uri']}")
        t = time.perf_counter()
        summary = milvus.build(force=True)
        build_s = time.perf_counter() - t
        log(f"milvus: built in {build_s:.1f} s ({summary.get('embedded_texts')} texts embedded); in-process asks, both stores")
        out: dict[str, Any] = {"uri_kind": kind, "build_s": round(build_s, 2), "counts": milvus.index.counts()}
        out["faiss"] = bench_inprocess(faiss_assistant, questions, repeats)
        out["milvus"] = bench_inprocess(milvus, questions, repeats)
        log("milvus: store primitives")
        out["primitives"] = {"faiss": _primitive_latency(faiss_assistant.index, faiss_assistant.embedder, questions, 1),
                             "milvus": _primitive_latency(milvus.index, milvus.embedder, questions, 1)}
        same = 0
        for q in questions:
            a = faiss_assistant.ask(q["question"], history=q["history"]).to_dict()
            b = milvus.ask(q["question"], history=q["history"]).to_dict()
            a.pop("took_ms", None)
            b.pop("took_ms", None)
            same += a == b
        out["same_answers"] = {"questions": len(questions), "identical": same}
        out["replica_memory"] = {"this_corpus": milvus.index.memory(),
                                 "estimate_1m_passages": replica_memory_estimate(1_000_000, vocab_max=settings.milvus_vocab_max,
                                                                                cache_rows=settings.milvus_cache_rows,
                                                                                vector_cache_rows=settings.milvus_vector_cache_rows)}
        for store in ("faiss", "milvus"):
            lat = out[store]["latency_ms"]
            log(f"milvus: {store} ask p50 {lat['p50']:.2f} ms, p95 {lat['p95']:.2f} ms")
        return out
    finally:
        conn = ms.connection(milvus)
        if kind == "server":
            try:
                for name in conn.call("list_collections"):
                    if name.startswith(update["milvus_prefix"] + "_"):
                        conn.call("drop_collection", name)
            except Exception:  # noqa: BLE001
                pass
        conn.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ---- section: the scale curve on milvus-lite ----------------------------------------------------


def _collection(client, name: str, dim: int, index_type: str) -> None:
    from pymilvus import DataType, Function, FunctionType

    from assistant.milvus_store import ANALYZER, BM25_PARAMS

    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("lex", DataType.VARCHAR, max_length=8192, enable_analyzer=True, analyzer_params=ANALYZER)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["lex"], output_field_names=["sparse"]))
    params = client.prepare_index_params()
    dense = {"M": 32, "efConstruction": 80} if index_type == "HNSW" else {}
    params.add_index("v", index_type=index_type, metric_type="IP", params={"params": dense} if dense else {})
    params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25", params={"params": BM25_PARAMS})
    client.create_collection(name, schema=schema, index_params=params)


def _scale_one(n: int, pool: np.ndarray, units: list[str], queries: np.ndarray, query_texts: list[str], k: int, seed: int,
               quick: bool, log: Log) -> dict[str, Any]:
    from pymilvus import MilvusClient

    from assistant.milvus_store import search_params

    rng = random.Random(seed + n)
    vectors = synthetic_vectors(pool, n, seed=seed + n)
    exact = exact_top_k(vectors, queries, k)
    index_type = "HNSW" if n >= 20_000 else "FLAT"
    row: dict[str, Any] = {"n": n, "index_type": index_type}
    with tempfile.TemporaryDirectory(prefix="summit-bench-milvus-scale-") as tmp, LiteServer(Path(tmp) / "data") as server:
        client = MilvusClient(server.uri, timeout=600)
        _collection(client, "scale", vectors.shape[1], index_type)
        base_mem = server.memory().get("rss_mb", 0.0)
        t0 = time.perf_counter()
        batch = 2000
        for a in range(0, n, batch):
            b = min(a + batch, n)
            texts = synthetic_passages(units, b - a, rng)
            client.insert("scale", [{"id": i, "lex": texts[i - a], "v": vectors[i]} for i in range(a, b)])
            if (a // batch) % 50 == 0 and a:
                log(f"milvus scale: {n}: {b} rows inserted ({rate(b, time.perf_counter() - t0):.0f}/s)")
        insert_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        client.flush("scale")
        # Wait for the background index builds (a release + load right away races them in
        # milvus-lite 3.2: "file seems not fully written").
        deadline = time.monotonic() + 3 * 3600
        while time.monotonic() < deadline:
            info = [client.describe_index("scale", f) for f in ("v", "sparse")]
            if all(int(i.get("pending_index_rows", 0)) == 0 and int(i.get("indexed_rows", n)) >= n for i in info):
                break
            time.sleep(1.0)
        index_s = time.perf_counter() - t1
        warm = client.search("scale", data=[queries[0].tolist()], anns_field="v", limit=k, output_fields=["id"])
        assert warm
        row.update({
            "insert_s": round(insert_s, 1), "rows_per_s": round(rate(n, insert_s), 1),
            "flush_index_load_s": round(index_s, 1), "build_rows_per_s": round(rate(n, insert_s + index_s), 1),
            "server_memory_mb": {**server.memory(), "empty_rss_mb": base_mem}, "disk_mb": round(_dir_bytes(Path(tmp) / "data") / 2**20, 1),
        })
        default = search_params(index_type, n)["params"].get("ef")
        efs = [None] if index_type == "FLAT" else sorted({64, 128, default or 128, 512} if not quick else {default or 128})
        sweep = []
        for ef in efs:
            ms_list, ids = [], []
            params = {"metric_type": "IP", "params": {} if ef is None else {"ef": ef}}
            for q in queries:
                t = time.perf_counter()
                res = client.search("scale", data=[q.tolist()], anns_field="v", limit=k, output_fields=["id"], search_params=params)
                ms_list.append((time.perf_counter() - t) * 1000)
                got = [int(h["id"]) for h in res[0]]
                ids.append(got + [-1] * (k - len(got)))
            lat = latency_summary(ms_list)
            sweep.append({"ef": ef, "p50_ms": lat["p50"], "p95_ms": lat["p95"], "recall_at_10": round(recall_at_k(np.array(ids), exact, k), 4)})
        row["dense_sweep"] = sweep
        row["dense"] = next((s for s in sweep if s["ef"] == default), sweep[0])
        bm = []
        for text in query_texts:
            t = time.perf_counter()
            client.search("scale", data=[text], anns_field="sparse", limit=60, output_fields=["id"],
                          search_params={"metric_type": "BM25", "params": {}})
            bm.append((time.perf_counter() - t) * 1000)
        row["bm25_ms"] = latency_summary(bm)
        row["server_memory_mb"]["after_search"] = server.memory()
        client.close()
    row["replica_memory"] = replica_memory_estimate(n)
    return row


def bench_scale(cfg, sentences: Sequence[str], questions: list[dict], encoder, model: str, log: Log) -> dict[str, Any]:
    from benchmarks.bench import scale_pool

    units, sizes, pool_n, pool, pool_s = scale_pool(cfg, sentences, encoder, model, log, "milvus scale")
    query_texts = [q["question"] for q in questions]
    queries = np.ascontiguousarray(encoder.encode(query_texts, query=True), dtype=np.float32)
    out: dict[str, Any] = {
        "method": ("One passage collection per size on a milvus-lite server process (its own RSS): the primary encoder's "
                   "vector (HNSW M=32 efConstruction=80 from 20k rows, FLAT below) and a BM25 field Milvus computes from "
                   "the passage text; the synthetic passages and vectors of bench.bench_scale. Inserts in batches of 2000. "
                   "Queries: the gold questions, one at a time. Recall@10 against exact inner-product search."),
        "pool": {"passages": pool_n, "embed_s": round(pool_s, 1)},
        "queries": len(queries),
        "sizes": [],
        "cluster_notes": CLUSTER_NOTES,
    }
    for n in sizes:
        log(f"milvus scale: {n} passages")
        row = _scale_one(n, pool, units, queries, query_texts, 10, cfg.seed, cfg.quick, log)
        out["sizes"].append(row)
        d = row["dense"]
        log(f"milvus scale: {n}: {row['rows_per_s']} rows/s inserted, dense p50 {d['p50_ms']} / p95 {d['p95_ms']} ms, "
            f"recall@10 {d['recall_at_10']}, server {row['server_memory_mb'].get('rss_mb')} MiB")
    return out


# ---- the table -----------------------------------------------------------------------------------


def summary_rows(result: dict) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    m = result.get("milvus")
    if m:
        for store in ("faiss", "milvus"):
            lat = m[store]["latency_ms"]
            rows.append(("milvus", f"{store}: ask p50 / p95 ({lat['n']} asks)", f"{lat['p50']:.2f} / {lat['p95']:.2f} ms", ""))
        for name in ("dense_chunks_k30", "dense_sentences_k60", "lexical_k30"):
            f, v = m["primitives"]["faiss"][name], m["primitives"]["milvus"][name]
            rows.append(("milvus", f"{name} p50: faiss / milvus", f"{f['p50']:.2f} / {v['p50']:.2f} ms", ""))
        same = m["same_answers"]
        rows.append(("milvus", "identical answers", f"{same['identical']} / {same['questions']}", ""))
        est = m["replica_memory"]["estimate_1m_passages"]
        rows.append(("milvus", "replica memory at 1M passages (estimate)", f"{est['total_mb']} MiB", ""))
    sc = result.get("milvus_scale")
    if sc:
        for row in sc["sizes"]:
            d = row["dense"]
            rows.append(("milvus scale", f"{row['n']:,} {row['index_type']}",
                         f"p50 {d['p50_ms']:.1f} / p95 {d['p95_ms']:.1f} ms, recall@10 {d['recall_at_10']:.3f}, "
                         f"BM25 p50 {row['bm25_ms']['p50']:.1f} ms, {row['build_rows_per_s']:.0f} rows/s, "
                         f"server {row['server_memory_mb'].get('rss_mb')} MiB, disk {row['disk_mb']} MiB", ""))
    return rows

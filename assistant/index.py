"""The index: a build product of documents/, written whole to a new folder and swapped in atomically.

Layout::

    index/
      current -> builds/<build_id>      (a symlink, replaced atomically with os.replace)
      builds/<build_id>/manifest.json   format, model, chunking, per-document hashes, file checksums
      builds/<build_id>/chunks.faiss    FAISS index of chunk vectors (normalised, inner product)
      builds/<build_id>/sentences.faiss FAISS index of sentence vectors
      builds/<build_id>/table.json      documents (cleaned text), chunks, sentences with offsets
      builds/<build_id>/lexical.npz     BM25 weights (terms x chunks) and the vocabulary vectors

A reader resolves ``current`` once and reads one build folder, so it never sees half an index;
the previous build keeps serving until the new one is complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import sparse

from . import text as textmod
from .chunking import chunk_document
from .documents import Document, document_paths, load_documents
from .embedding import Embedder
from .errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from .settings import Settings

log = logging.getLogger("summit.index")

FORMAT_VERSION = 1
FILES = ("table.json", "chunks.faiss", "sentences.faiss", "lexical.npz")
BM25_K1, BM25_B = 1.2, 0.75

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def settings_fingerprint(settings: Settings, embedder_id: str) -> dict:
    """What a build depends on besides the documents; any difference means rebuild."""
    return {
        "format_version": FORMAT_VERSION,
        "model": embedder_id,
        "chunking": {
            "sentences": settings.chunk_sentences,
            "overlap": settings.chunk_overlap,
            "max_chars": settings.chunk_max_chars,
        },
        "cleaning": hashlib.sha256("\n".join(settings.boilerplate_patterns).encode()).hexdigest()[:16],
        "index_type_setting": settings.index_type,
    }


@dataclass
class ChunkRecord:
    chunk_id: str
    doc_id: str
    start: int
    end: int
    sentence_ids: list[int]


@dataclass
class SentenceRecord:
    doc_id: str
    start: int
    end: int
    chunk_ids: list[int] = field(default_factory=list)


@dataclass
class LoadedIndex:
    path: Path
    manifest: dict
    documents: dict[str, dict]  # doc_id -> metadata + "text"
    chunks: list[ChunkRecord]
    sentences: list[SentenceRecord]
    chunk_index: object  # faiss.Index
    sentence_index: object
    bm25: sparse.csr_matrix  # terms x chunks
    term_ids: dict[str, int]
    idf: np.ndarray
    vocab: list[str]  # surface words, for cross-lingual term translation
    vocab_terms: list[int]  # term id of each vocab word
    vocab_vectors: np.ndarray  # float32, normalised

    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]

    def chunk_text(self, i: int) -> str:
        c = self.chunks[i]
        return self.documents[c.doc_id]["text"][c.start : c.end]

    def sentence_text(self, i: int) -> str:
        s = self.sentences[i]
        return self.documents[s.doc_id]["text"][s.start : s.end]


# ---- building ------------------------------------------------------------------------------


def choose_index_type(settings: Settings, n_vectors: int) -> str:
    if settings.index_type != "auto":
        return settings.index_type
    return "hnsw" if n_vectors >= settings.hnsw_threshold else "flat"


def make_faiss_index(vectors: np.ndarray, kind: str):
    """FAISS index over normalised vectors (inner product = cosine).

    flat: exact. hnsw: an HNSW graph (M=32) over float16-coded vectors: half the memory of
    float32 with the same recall@10 on the bench (float16 error ~1e-4 is far below the gaps
    between neighbours; 8-bit coding was not: recall fell 0.93 -> 0.89 at 1M), and faster.
    The graph is built on every core (the query path pins FAISS to settings.threads, which
    made a 1M build single-threaded); the previous thread count is restored after.
    """
    import faiss

    dim = vectors.shape[1]
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if kind == "hnsw":
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        # Search breadth grows with the corpus. Recall@10 against exact search on the bench's (crowded)
        # synthetic corpora: 10k ef 128 0.99; 100k ef 128 0.963, ef 256 0.985; 1M ef 512 0.958,
        # ef 1024 0.979 (p95 2.1 and 3.4 ms). Each step keeps a margin over 0.95.
        n = len(vectors)
        index.hnsw.efSearch = 128 if n <= 50_000 else 256 if n <= 250_000 else 512 if n <= 1_000_000 else 1024
        if not index.is_trained:  # float16 coding learns nothing; faiss still wants the call
            index.train(vectors if len(vectors) else np.zeros((1, dim), dtype=np.float32))
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        previous = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(max(previous, os.cpu_count() or 1))
        try:
            index.add(vectors)
        finally:
            faiss.omp_set_num_threads(previous)
    return index


def build_lexical(chunk_terms: list[list[str]]) -> tuple[sparse.csr_matrix, dict[str, int], np.ndarray]:
    """BM25 weight of every (term, chunk) pair, so a query is one sparse product."""
    term_ids: dict[str, int] = {}
    rows, cols, tfs = [], [], []
    lengths = np.array([max(len(t), 1) for t in chunk_terms], dtype=np.float32)
    avgdl = float(lengths.mean()) if len(lengths) else 1.0
    for j, toks in enumerate(chunk_terms):
        for term, tf in Counter(toks).items():
            rows.append(term_ids.setdefault(term, len(term_ids)))
            cols.append(j)
            tfs.append(tf)
    n = len(chunk_terms)
    tf = np.array(tfs, dtype=np.float32)
    df = np.bincount(np.array(rows, dtype=np.int64), minlength=len(term_ids)).astype(np.float32)
    idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
    norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths[np.array(cols, dtype=np.int64)] / avgdl) if tfs else np.zeros(0)
    weights = idf[np.array(rows, dtype=np.int64)] * tf * (BM25_K1 + 1) / (tf + norm) if tfs else np.zeros(0)
    matrix = sparse.csr_matrix((weights, (rows, cols)), shape=(len(term_ids), n), dtype=np.float32)
    return matrix, term_ids, idf


def _vocabulary(documents: list[Document]) -> list[tuple[str, str]]:
    """(surface word, term) pairs worth translating a question word into: content words of the
    corpus, lower case, no numbers."""
    seen: dict[str, str] = {}
    for doc in documents:
        for w in textmod.content_words(doc.text):
            if w not in seen and len(w) > 2 and not any(ch.isdigit() for ch in w):
                seen[w] = textmod.stem(w, doc.language)
    return sorted(seen.items())


def _previous_vectors(
    settings: Settings, fingerprint: dict, vocab_out: dict[str, np.ndarray] | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Vectors of unchanged documents from the current build, to avoid re-embedding them.
    ``vocab_out``, when given, receives the current build's vocabulary vectors (word -> vector)."""
    try:
        old = load_index(settings.index_dir, verify=True)
    except Exception:
        return {}
    if any(old.manifest.get(k) != v for k, v in fingerprint.items()):
        return {}
    if vocab_out is not None:
        vocab_out.update(zip(old.vocab, old.vocab_vectors))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    chunk_vecs = old.chunk_index.reconstruct_n(0, old.chunk_index.ntotal)
    sent_vecs = old.sentence_index.reconstruct_n(0, old.sentence_index.ntotal)
    for doc_id, meta in old.manifest["documents"].items():
        c_rows = [i for i, c in enumerate(old.chunks) if c.doc_id == doc_id]
        s_rows = [i for i, s in enumerate(old.sentences) if s.doc_id == doc_id]
        out[meta["sha256"]] = (chunk_vecs[c_rows], sent_vecs[s_rows])
    return out


@contextlib.contextmanager
def build_lock(index_dir: Path):
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_index(
    settings: Settings,
    embedder: Embedder,
    *,
    skip_invalid: bool = False,
    progress: Progress | None = None,
    reuse: bool = True,
) -> dict:
    """Build the index from settings.documents_dir into settings.index_dir; return a summary.

    Any failure leaves the previous build in place.
    """
    settings.check()
    t0 = time.perf_counter()
    step = progress or (lambda stage, done, total: None)
    documents, skipped = load_documents(settings.documents_dir, settings.boilerplate_patterns, skip_invalid=skip_invalid)
    embedder.load()
    fingerprint = settings_fingerprint(settings, embedder.id)

    chunks: list[ChunkRecord] = []
    sentences: list[SentenceRecord] = []
    chunk_terms: list[list[str]] = []
    per_doc_rows: list[tuple[Document, list[int], list[int]]] = []
    for doc in documents:
        doc_chunks = chunk_document(
            doc.doc_id,
            doc.text,
            sentences_per_chunk=settings.chunk_sentences,
            overlap=settings.chunk_overlap,
            max_chars=settings.chunk_max_chars,
        )
        sent_row: dict[tuple[int, int], int] = {}
        c_rows, s_rows = [], []
        for ch in doc_chunks:
            ids = []
            for s in ch.sentences:
                key = (s.start, s.end)
                if key not in sent_row:
                    sent_row[key] = len(sentences)
                    s_rows.append(len(sentences))
                    sentences.append(SentenceRecord(doc.doc_id, s.start, s.end))
                sentences[sent_row[key]].chunk_ids.append(len(chunks))
                ids.append(sent_row[key])
            c_rows.append(len(chunks))
            chunks.append(ChunkRecord(ch.chunk_id, doc.doc_id, ch.start, ch.end, ids))
            # The title travels with every chunk for lexical matching: it says what the passage is about.
            chunk_terms.append(textmod.terms(ch.text, doc.language))
        per_doc_rows.append((doc, c_rows, s_rows))

    previous_vocab: dict[str, np.ndarray] = {}
    previous = _previous_vectors(settings, fingerprint, previous_vocab) if reuse else {}
    dim = embedder.dimension
    chunk_vecs = np.zeros((len(chunks), dim), dtype=np.float32)
    sent_vecs = np.zeros((len(sentences), dim), dtype=np.float32)
    to_embed: list[tuple[str, int, str]] = []  # (kind, row, text)
    reused_docs = 0
    for doc, c_rows, s_rows in per_doc_rows:
        old = previous.get(doc.content_hash)
        if old is not None and len(old[0]) == len(c_rows) and len(old[1]) == len(s_rows):
            chunk_vecs[c_rows], sent_vecs[s_rows] = old
            reused_docs += 1
            continue
        to_embed += [("c", r, doc.text[chunks[r].start : chunks[r].end]) for r in c_rows]
        to_embed += [("s", r, doc.text[sentences[r].start : sentences[r].end]) for r in s_rows]

    vocab_pairs = _vocabulary(documents)
    # Words the previous build already embedded keep their vectors: adding one article embeds
    # only its own passages, sentences and new words.
    new_words = [w for w, _ in vocab_pairs if w not in previous_vocab]
    texts = [t for _, _, t in to_embed] + new_words
    vectors = np.zeros((0, dim), dtype=np.float32)
    if texts:
        batch = 256
        parts = []
        for i in range(0, len(texts), batch):
            parts.append(embedder.encode(texts[i : i + batch]))
            step("embedding", min(i + batch, len(texts)), len(texts))
        vectors = np.vstack(parts)
    for (kind, row, _), vec in zip(to_embed, vectors):
        (chunk_vecs if kind == "c" else sent_vecs)[row] = vec
    fresh = dict(zip(new_words, vectors[len(to_embed) :]))
    vocab_vectors = np.zeros((len(vocab_pairs), dim), dtype=np.float32)
    for i, (w, _) in enumerate(vocab_pairs):
        vocab_vectors[i] = fresh[w] if w in fresh else previous_vocab[w]

    step("indexing", 0, 1)
    kind = choose_index_type(settings, len(chunks))
    chunk_index = make_faiss_index(chunk_vecs, kind)
    sentence_index = make_faiss_index(sent_vecs, choose_index_type(settings, len(sentences)))
    bm25, term_ids, idf = build_lexical(chunk_terms)
    vocab_term_ids = [term_ids.get(t, -1) for _, t in vocab_pairs]
    keep = [i for i, t in enumerate(vocab_term_ids) if t >= 0]

    build_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    table = {
        "build_id": build_id,
        "documents": [{**d.metadata(), "text": d.text, "path": d.path, "sha256": d.content_hash} for d in documents],
        "chunks": [[c.chunk_id, c.doc_id, c.start, c.end, c.sentence_ids] for c in chunks],
        "sentences": [[s.doc_id, s.start, s.end, s.chunk_ids] for s in sentences],
        "vocab": [vocab_pairs[i][0] for i in keep],
        "terms": list(term_ids),  # dict order is term id order
    }
    manifest = {
        **fingerprint,
        "build_id": build_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dimension": dim,
        "index_type": kind,
        "counts": {"documents": len(documents), "chunks": len(chunks), "sentences": len(sentences)},
        "documents": {d.doc_id: {"path": Path(d.path).name, "sha256": d.content_hash} for d in documents},
    }
    _write_build(
        settings.index_dir,
        manifest,
        table,
        chunk_index,
        sentence_index,
        bm25,
        idf,
        np.array([vocab_term_ids[i] for i in keep], dtype=np.int64),
        vocab_vectors[keep].astype(np.float16),
    )
    return {
        "build_id": build_id,
        "documents": len(documents),
        "chunks": len(chunks),
        "sentences": len(sentences),
        "index_type": kind,
        "reused_documents": reused_docs,
        "embedded_texts": len(texts),
        "skipped": [str(e) for e in skipped],
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _write_build(index_dir: Path, manifest: dict, table: dict, chunk_index, sentence_index, bm25, idf, vocab_terms, vocab_vectors):
    import faiss

    index_dir = Path(index_dir)
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    tmp = builds / f".tmp-{manifest['build_id']}"
    final = builds / manifest["build_id"]
    try:
        tmp.mkdir()
        (tmp / "table.json").write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
        faiss.write_index(chunk_index, str(tmp / "chunks.faiss"))
        faiss.write_index(sentence_index, str(tmp / "sentences.faiss"))
        with open(tmp / "lexical.npz", "wb") as fh:
            np.savez(
                fh,
                data=bm25.data, indices=bm25.indices, indptr=bm25.indptr, shape=np.array(bm25.shape),
                idf=idf, vocab_terms=vocab_terms, vocab_vectors=vocab_vectors,
            )
        manifest["files"] = {name: _sha256_file(tmp / name) for name in FILES}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        for name in (*FILES, "manifest.json"):
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        os.rename(tmp, final)
        link_tmp = index_dir / f".current-{uuid.uuid4().hex[:8]}"
        os.symlink(Path("builds") / final.name, link_tmp)
        os.replace(link_tmp, index_dir / "current")  # the atomic swap
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune_builds(builds, keep={final.name})


def _prune_builds(builds: Path, keep: set[str], keep_latest: int = 2) -> None:
    """Remove old builds, keeping the newest few (a server may still be reading the previous one)."""
    done = sorted((p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    for old in done[:-keep_latest]:
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    for stale in builds.glob(".tmp-*"):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)


# ---- loading and checking ------------------------------------------------------------------


def current_build(index_dir: Path) -> Path:
    link = Path(index_dir) / "current"
    if not link.exists():
        if link.is_symlink():
            raise IndexCorruptError(f"index at {index_dir} points to a missing build; run `summit build --force`")
        raise IndexMissingError(f"no index at {index_dir}; run `summit build`")
    return link.resolve()


def read_manifest(index_dir: Path) -> dict:
    path = current_build(index_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"index at {index_dir} has no manifest.json; run `summit build --force`") from None
    except (ValueError, UnicodeDecodeError):
        raise IndexCorruptError(f"index manifest {path} is not valid JSON; run `summit build --force`") from None
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"index manifest {path} is not a JSON object; run `summit build --force`")
    return manifest


def check_compatible(manifest: dict, settings: Settings, embedder_id: str) -> None:
    expected = settings_fingerprint(settings, embedder_id)
    for key, value in expected.items():
        if manifest.get(key) != value:
            raise IndexMismatchError(
                f"index was built with {key}={manifest.get(key)!r} but the settings ask for {value!r}; "
                f"run `summit build` to rebuild it"
            )


def documents_changed(manifest: dict, documents_dir: Path) -> str | None:
    """Why the index is stale with respect to documents/, or None when it is up to date."""
    current = {}
    for path in document_paths(documents_dir):
        current[path.name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "?"
    built = {meta["path"]: meta["sha256"] for meta in manifest.get("documents", {}).values()}
    added = sorted(set(current) - set(built))
    removed = sorted(set(built) - set(current))
    changed = sorted(n for n in set(current) & set(built) if current[n] != built[n])
    if not (added or removed or changed):
        return None
    parts = [f"{label}: {', '.join(names)}" for label, names in (("added", added), ("removed", removed), ("changed", changed)) if names]
    return "documents changed (" + "; ".join(parts) + ")"


def load_index(index_dir: Path, *, verify: bool = True) -> LoadedIndex:
    import faiss

    build = current_build(index_dir)
    manifest = read_manifest(index_dir)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index format {manifest.get('format_version')!r} is not the supported {FORMAT_VERSION}; run `summit build --force`"
        )
    files = manifest.get("files") or {}
    for name in FILES:
        path = build / name
        if not path.is_file():
            raise IndexCorruptError(f"index file {name} is missing in {build}; run `summit build --force`")
        if verify and files.get(name) != _sha256_file(path):
            raise IndexCorruptError(
                f"index file {name} does not match its checksum (damaged, or from another build); run `summit build --force`"
            )
    try:
        table = json.loads((build / "table.json").read_text(encoding="utf-8"))
        if table.get("build_id") != manifest.get("build_id"):
            raise IndexCorruptError(f"index files in {build} come from different builds; run `summit build --force`")
        chunk_index = faiss.read_index(str(build / "chunks.faiss"))
        sentence_index = faiss.read_index(str(build / "sentences.faiss"))
        with np.load(build / "lexical.npz", allow_pickle=False) as z:
            bm25 = sparse.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            idf, vocab_terms, vocab_vectors = z["idf"], z["vocab_terms"], z["vocab_vectors"].astype(np.float32)
        documents = {d["doc_id"]: d for d in table["documents"]}
        chunks = [ChunkRecord(c[0], c[1], c[2], c[3], c[4]) for c in table["chunks"]]
        sentences = [SentenceRecord(s[0], s[1], s[2], s[3]) for s in table["sentences"]]
        vocab = table["vocab"]
        term_ids = {term: i for i, term in enumerate(table["terms"])}
    except IndexCorruptError:
        raise
    except Exception as exc:
        raise IndexCorruptError(f"index in {build} cannot be read ({type(exc).__name__}); run `summit build --force`") from None
    if chunk_index.ntotal != len(chunks) or sentence_index.ntotal != len(sentences) or bm25.shape[1] != len(chunks):
        raise IndexCorruptError(f"index in {build} is inconsistent (vector and table counts differ); run `summit build --force`")
    if chunk_index.d != manifest.get("dimension"):
        raise IndexCorruptError(
            f"index vectors have dimension {chunk_index.d} but the manifest says {manifest.get('dimension')}; "
            f"run `summit build --force`"
        )
    if len(vocab) != len(vocab_terms) or len(vocab) != len(vocab_vectors):
        raise IndexCorruptError(f"index vocabulary in {build} is inconsistent; run `summit build --force`")
    if len(term_ids) != bm25.shape[0]:
        raise IndexCorruptError(f"index lexical table in {build} is inconsistent; run `summit build --force`")
    return LoadedIndex(build, manifest, documents, chunks, sentences, chunk_index, sentence_index, bm25, term_ids,
                       idf, vocab, [int(t) for t in vocab_terms], vocab_vectors)


def index_status(settings: Settings, embedder_id: str) -> str | None:
    """None when the index is present, intact, compatible and up to date; otherwise why not."""
    try:
        manifest = read_manifest(settings.index_dir)
        check_compatible(manifest, settings, embedder_id)
        return documents_changed(manifest, settings.documents_dir)
    except (IndexMissingError, IndexCorruptError, IndexMismatchError) as exc:
        return str(exc)

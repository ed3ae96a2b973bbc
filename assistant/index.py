"""The index: a build product of documents/, written whole to a new folder and swapped in atomically.

Layout::

    index/
      current -> builds/<build_id>        (a symlink, replaced atomically with os.replace)
      builds/<build_id>/manifest.json     format, encoders, chunking, per-document hashes, file checksums
      builds/<build_id>/chunks.faiss      FAISS index of chunk vectors of the primary encoder
      builds/<build_id>/sentences.faiss   FAISS index of sentence vectors of the primary encoder
      builds/<build_id>/chunks.N.faiss    ... of encoder N (N = 1, 2, ...), when more are configured
      builds/<build_id>/sentences.N.faiss
      builds/<build_id>/table.json        documents (cleaned text), chunks, sentences with offsets,
                                          entities and back-reference flags (annotate.py)
      builds/<build_id>/lexical.npz       BM25 weights (terms x chunks) and the vocabulary vectors

A reader resolves ``current`` once and reads one build folder, so it never sees half an index;
the previous build keeps serving until the new one is complete.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterable

import numpy as np
from scipy import sparse

from . import text as textmod
from .chunking import chunk_document
from .documents import Document, document_paths, load_documents
from .annotate import SentenceNotes, annotate, annotator_id
from .embedding import EncoderSet
from .errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from .settings import Settings

log = logging.getLogger("summit.index")

FORMAT_VERSION = 4
FILES = ("table.json", "chunks.faiss", "sentences.faiss", "lexical.npz")  # the primary encoder's; more per extra encoder
BM25_K1, BM25_B = 1.2, 0.75

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def vector_files(n_encoders: int) -> list[str]:
    names = []
    for i in range(n_encoders):
        suffix = "" if i == 0 else f".{i}"
        names += [f"chunks{suffix}.faiss", f"sentences{suffix}.faiss"]
    return names


def all_files(n_encoders: int) -> list[str]:
    return ["table.json", "lexical.npz", *vector_files(n_encoders)]


def settings_fingerprint(settings: Settings, encoder_ids: list[str] | str) -> dict:
    """What a build depends on besides the documents; any difference means rebuild."""
    ids = [encoder_ids] if isinstance(encoder_ids, str) else list(encoder_ids)
    return {
        "format_version": FORMAT_VERSION,
        "model": ids[0],
        "encoders": ids,
        "annotator": annotator_id() if settings.annotate else "none",
        "roles": ROLES_VERSION,
        "chunking": {
            "sentences": settings.chunk_sentences,
            "overlap": settings.chunk_overlap,
            "max_chars": settings.chunk_max_chars,
        },
        "cleaning": hashlib.sha256("\n".join(settings.boilerplate_patterns).encode()).hexdigest()[:16],
        "index_type_setting": settings.index_type,
        "latent_terms": latent_terms_setting(settings, ids),
    }


def latent_terms_setting(settings: Settings, encoder_ids: list[str]) -> dict | None:
    """Which encoder codes the sentences' latent terms, how many per text and from what input
    (the e5-prefixed text); None for none."""
    from .embedding import E5_MODEL, LATENT_TOP_K

    if not settings.latent_terms:
        return None
    for i, eid in enumerate(encoder_ids):
        if eid.split("@")[0] == E5_MODEL:
            return {"encoder": i, "top_k": LATENT_TOP_K, "input": "prefixed"}
    return None


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
    # (start, end, label) in document offsets, from build-time annotation (annotate.py)
    entities: tuple[tuple[int, int, str], ...] = ()
    anaphor: bool = False  # its opening refers back to something named before


@dataclass
class LoadedIndex:
    """The embedded (FAISS) store: everything in memory, rows are ids. Implements the
    ``store.Store`` interface that retrieval and answering use."""

    path: Path
    manifest: dict
    documents: dict[str, dict]  # doc_id -> metadata + "text"
    chunks: list[ChunkRecord]
    sentences: list[SentenceRecord]
    chunk_indexes: list  # faiss.Index per encoder
    sentence_indexes: list
    bm25: sparse.csr_matrix  # terms x chunks
    term_ids: dict[str, int]
    idf: np.ndarray
    vocab: list[str]  # surface words, for cross-lingual term translation
    vocab_terms: list[int]  # term id of each vocab word
    vocab_vectors: np.ndarray  # float32, normalised (primary encoder)
    role_table: dict = field(default_factory=dict)  # term -> {"PER": n, "ORG": n, "LOC": n} (role_types)
    latent: sparse.csr_matrix | None = None  # sentences x latent terms (codes), when built with them
    kind: str = "faiss"
    _copies: dict = field(default_factory=dict, repr=False)
    _terms: list[str] | None = field(default=None, repr=False)

    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]

    @property
    def chunk_index(self):
        return self.chunk_indexes[0]

    @property
    def sentence_index(self):
        return self.sentence_indexes[0]

    @property
    def n_encoders(self) -> int:
        return len(self.chunk_indexes)

    # ---- the Store interface --------------------------------------------------------------
    def counts(self) -> dict:
        return {"documents": len(self.documents), "chunks": len(self.chunks), "sentences": len(self.sentences)}

    def document(self, doc_id: str) -> dict | None:
        return self.documents.get(doc_id)

    def document_list(self) -> list[dict]:
        return list(self.documents.values())

    def chunk(self, cid: int) -> ChunkRecord:
        return self.chunks[cid]

    def sentence(self, sid: int) -> SentenceRecord:
        return self.sentences[sid]

    def chunk_text(self, i: int) -> str:
        c = self.chunks[i]
        return self.documents[c.doc_id]["text"][c.start : c.end]

    def sentence_text(self, i: int) -> str:
        s = self.sentences[i]
        return self.documents[s.doc_id]["text"][s.start : s.end]

    def previous_sentence(self, sid: int) -> int | None:
        """The sentence before ``sid`` in the same document, or None."""
        if sid > 0 and self.sentences[sid - 1].doc_id == self.sentences[sid].doc_id:
            return sid - 1
        return None

    def next_sentence(self, sid: int) -> int | None:
        """The sentence after ``sid`` in the same document, or None."""
        if sid + 1 < len(self.sentences) and self.sentences[sid + 1].doc_id == self.sentences[sid].doc_id:
            return sid + 1
        return None

    def latent_code(self, sid: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.latent.indptr[sid], self.latent.indptr[sid + 1]  # a slice, not a row matrix per sentence
        return self.latent.indices[a:b].astype(np.int32), self.latent.data[a:b].astype(np.float32)

    def latent_scores(self, sids, code: np.ndarray | None) -> np.ndarray | None:
        """Cosine of each sentence's latent terms with ``code`` (a dense query code), or None
        when this build has none."""
        if self.latent is None or code is None or code.shape[0] != self.latent.shape[1]:
            return None
        return np.asarray(self.latent[list(sids)] @ code, dtype=np.float64).ravel()

    def ids(self, level: str) -> range:
        return range(len(self.sentences) if level == "sentence" else len(self.chunks))

    def dense(self, encoder: int, level: str, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        index = (self.sentence_indexes if level == "sentence" else self.chunk_indexes)[encoder]
        k = min(k, index.ntotal)
        if k <= 0:
            return []
        d, i = index.search(np.ascontiguousarray(vector[None, :], dtype=np.float32), k)
        return [(int(r), float(s)) for r, s in zip(i[0], d[0]) if r >= 0]

    def vectors(self, encoder: int, level: str, ids) -> np.ndarray:
        """Stored vectors of some rows: from an in-memory copy for a corpus that fits, else from FAISS."""
        index = (self.sentence_indexes if level == "sentence" else self.chunk_indexes)[encoder]
        key = (encoder, level)
        copy = self._copies.get(key)
        if copy is None and index.ntotal <= VECTOR_COPY_MAX:
            copy = self._copies[key] = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)
        ids = np.asarray(list(ids), dtype=np.int64)
        if copy is not None:
            return copy[ids]
        return np.stack([index.reconstruct(int(r)) for r in ids]) if len(ids) else np.zeros((0, index.d), np.float32)

    def lexical(self, terms: dict[str, float], k: int, words: list[str] | None = None) -> list[tuple[int, float]]:
        """BM25 over chunks for weighted index terms (stems)."""
        pairs = [(self.term_ids[t], w) for t, w in terms.items() if t in self.term_ids]
        if not pairs:
            return []
        ids = np.fromiter((p[0] for p in pairs), dtype=np.int64)
        w = np.fromiter((p[1] for p in pairs), dtype=np.float32)
        scores = np.asarray(self.bm25[ids].T @ w).ravel()
        nz = np.flatnonzero(scores > 0)
        if not nz.size:
            return []
        top = nz[np.argsort(-scores[nz], kind="stable")[:k]]
        return [(int(c), float(scores[c])) for c in top]

    def roles(self, term: str) -> dict[str, int]:
        """How often the word ``term`` stands beside a person, an organisation, a place name."""
        return self.role_table.get(term, {})

    def term_idf(self, term: str) -> float | None:
        t = self.term_ids.get(term)
        return None if t is None else float(self.idf[t])

    @property
    def max_idf(self) -> float:
        return float(self.idf.max()) if len(self.idf) else 1.0

    def term_of(self, vocab_row: int) -> str:
        if self._terms is None:
            self._terms = list(self.term_ids)
        return self._terms[self.vocab_terms[vocab_row]]


VECTOR_COPY_MAX = 200_000  # vectors copied out of FAISS for direct access
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


ROLE_WINDOW = 3  # content words looked at beside a name
# The prepositions of both languages (a closed class): what follows one is its complement.
_PREPOSITION = re.compile(
    r"(?:(?<=[\s'’])|^)(?:de|du|des|à|au|aux|en|par|pour|sur|avec|chez|dans|vers|entre|of|in|at|for|from|by|with|to|on|into)(?=\s)"
    r"|(?:(?<=\s)|^)d['’]", re.I)
_CONJUNCTION = re.compile(r"\b(?:et|ou|and|or)\b", re.I)


def _name_or_number(word: str) -> bool:
    """A capitalised word or one with a digit: part of a name or a figure, never a role noun."""
    return word[:1].isupper() or any(ch.isdigit() for ch in word)


def role_words(before: str) -> list[str]:
    """The words that say what kind of name follows ``before`` (the text between the last
    punctuation and the name). After a preposition, the name is that preposition's complement:
    the noun phrase that leads up to it names the complement's kind ("la fondation Altavia" in
    "ancien dirigeant de la fondation Altavia"); a name right after the preposition, or after
    other names and a conjunction, is the complement of a noun about something else ("le maire
    de Brevannes", "the head of Acme and Zenith"); names alone in between leave the noun before the
    preposition naming the name ("le directeur de Zenith Labs Ana Ruiz")."""
    preps = list(_PREPOSITION.finditer(before))
    if not preps:
        return textmod.content_words(before, keep_case=True)[-ROLE_WINDOW:]
    tail = before[preps[-1].end() :]
    tail_words = textmod.content_words(tail, keep_case=True)
    if any(not _name_or_number(w) for w in tail_words):
        return tail_words[-ROLE_WINDOW:]
    if not tail_words or _CONJUNCTION.search(tail):
        return []
    return textmod.content_words(before, keep_case=True)[-ROLE_WINDOW:]


# Bumped when what role_types reads from the annotations changes: indexes rebuild.
ROLES_VERSION = 2


def role_types(documents: list[Document], sentences: list[SentenceRecord]) -> dict[str, dict[str, int]]:
    """Which kind of name each word introduces in this corpus: news style puts a role noun
    right by a name ("la commissaire Ilona Vesterberg", "Rosa Quintana, la maire de Lyon",
    "le fonds Altavia"). For every annotated name, the few content words just before it, or just
    after a comma that follows it, count towards that word's label (PER, ORG, LOC). A question's
    "which X" is then typed by what X introduces here, whatever the words."""
    by_doc: dict[str, list[SentenceRecord]] = {}
    for s in sentences:
        by_doc.setdefault(s.doc_id, []).append(s)
    return role_table(role_counts(d, by_doc.get(d.doc_id, [])) for d in documents)


def role_counts(doc: Document, sentences: list[SentenceRecord]) -> dict[str, dict[str, int]]:
    """role_types of one document without its final filter: raw counts, which add up over
    documents (role_table sums and filters them; the Milvus store keeps them per document)."""
    counts: dict[str, Counter] = {}
    for s in sentences:
        for a, b, label in s.entities or ():
            if label not in ("PER", "ORG", "LOC"):
                continue
            before = doc.text[max(s.start, a - 60) : a]
            before = re.split(r"[,;:.()«»\"]", before)[-1]
            words = role_words(before)
            after = doc.text[b : min(s.end, b + 60)]
            m = re.match(r"\s*,\s*([^,;:.()]+)", after)
            if m:
                words += textmod.content_words(m.group(1), keep_case=True)[:ROLE_WINDOW]
            for w in words:
                if _name_or_number(w):
                    continue
                counts.setdefault(textmod.stem(w.lower(), doc.language), Counter())[label] += 1
    return {t: dict(c) for t, c in counts.items()}


def role_table(per_document: Iterable[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """The corpus table: per-document role counts summed, words seen beside a name at least twice."""
    total: dict[str, Counter] = {}
    for roles in per_document:
        for t, c in roles.items():
            total.setdefault(t, Counter()).update(c)
    return {t: dict(c) for t, c in total.items() if sum(c.values()) >= 2}


def vocabulary(documents: list[Document]) -> list[tuple[str, str]]:
    """(word, term) pairs worth translating a question word into: content words of the corpus,
    lower case, no numbers."""
    return [(w, t) for w, t, _ in vocabulary_forms(documents)]


def vocabulary_forms(documents: list[Document]) -> list[tuple[str, str, str]]:
    """(lower-case word, term, the form written most often) for every vocabulary word. Word
    vectors are taken of the written form: a multilingual encoder matches "Corée" with "Korea"
    (0.90) far better than "corée" with "korea" (0.31)."""
    seen: dict[str, str] = {}
    forms: dict[str, Counter] = {}
    for doc in documents:
        for surface in textmod.words(doc.text):
            w = surface.lower()
            if len(w) <= 2 or any(ch.isdigit() for ch in w) or w in textmod.STOPWORDS or textmod.fold(w) in textmod.STOPWORDS:
                continue
            if w not in seen:
                seen[w] = textmod.stem(w, doc.language)
            forms.setdefault(w, Counter())[surface] += 1
    return sorted((w, t, forms[w].most_common(1)[0][0]) for w, t in seen.items())


@dataclass
class _Reusable:
    chunk_vectors: list[np.ndarray]  # per encoder
    sentence_vectors: list[np.ndarray]
    notes: list[SentenceNotes]
    latent: list | None = None  # the sentences' latent-term codes, when the build had them


def _previous_build(settings: Settings, fingerprint: dict) -> tuple[dict[str, _Reusable], dict[str, np.ndarray]]:
    """Vectors and annotations of unchanged documents, and the vocabulary vectors, from the
    current build, so that an update embeds only what is new."""
    try:
        old = load_index(settings.index_dir, verify=True)
    except Exception:
        return {}, {}
    if any(old.manifest.get(k) != v for k, v in fingerprint.items()):
        return {}, {}
    out: dict[str, _Reusable] = {}
    chunk_vecs = [old.vectors(e, "chunk", range(len(old.chunks))) for e in range(old.n_encoders)]
    sent_vecs = [old.vectors(e, "sentence", range(len(old.sentences))) for e in range(old.n_encoders)]
    c_rows: dict[str, list[int]] = {}
    s_rows: dict[str, list[int]] = {}
    for i, c in enumerate(old.chunks):
        c_rows.setdefault(c.doc_id, []).append(i)
    for i, s in enumerate(old.sentences):
        s_rows.setdefault(s.doc_id, []).append(i)
    for doc_id, meta in old.manifest["documents"].items():
        cr, sr = c_rows.get(doc_id, []), s_rows.get(doc_id, [])
        out[meta["sha256"]] = _Reusable(
            [v[cr] for v in chunk_vecs], [v[sr] for v in sent_vecs],
            [SentenceNotes(old.sentences[r].entities, old.sentences[r].anaphor) for r in sr],
            [old.latent_code(r) for r in sr] if old.latent is not None else None,
        )
    words = {w: old.vocab_vectors[i] for i, w in enumerate(old.vocab)}
    return out, words


@contextlib.contextmanager
def build_lock(index_dir: Path):
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def corpus_dirs(settings: Settings) -> list[Path]:
    return [Path(settings.documents_dir), *[Path(d) for d in settings.extra_documents_dirs]]


def load_corpus(settings: Settings, *, skip_invalid: bool = False) -> tuple[list[Document], list]:
    """Every document of documents_dir and the extra folders; ids must be unique across them."""
    documents, skipped, seen = [], [], {}
    for folder in corpus_dirs(settings):
        docs, bad = load_documents(folder, settings.boilerplate_patterns, skip_invalid=skip_invalid)
        skipped += bad
        for d in docs:
            if d.doc_id in seen:
                from .errors import DocumentError

                err = DocumentError(d.path, f"has the same id '{d.doc_id}' as {seen[d.doc_id]}; rename one of them")
                if not skip_invalid:
                    raise err
                skipped.append(err)
                continue
            seen[d.doc_id] = d.path
            documents.append(d)
    return documents, skipped


def _document_key(folder_index: int, path: Path) -> str:
    return path.name if folder_index == 0 else f"{folder_index}:{path.name}"


@dataclass
class _Segmented:
    """The corpus cut into passages and sentences (rows of the index tables)."""

    chunks: list[ChunkRecord] = field(default_factory=list)
    sentences: list[SentenceRecord] = field(default_factory=list)
    chunk_terms: list[list[str]] = field(default_factory=list)
    rows: list[tuple[Document, list[int], list[int]]] = field(default_factory=list)  # (doc, chunk rows, sentence rows)


def _segment(settings: Settings, documents: list[Document]) -> _Segmented:
    """Chunk every document; a sentence shared by overlapping passages is one row."""
    out = _Segmented()
    for doc in documents:
        doc_chunks = chunk_document(doc.doc_id, doc.text, sentences_per_chunk=settings.chunk_sentences,
                                    overlap=settings.chunk_overlap, max_chars=settings.chunk_max_chars)
        sent_row: dict[tuple[int, int], int] = {}
        c_rows, s_rows = [], []
        for ch in doc_chunks:
            ids = []
            for s in ch.sentences:
                key = (s.start, s.end)
                if key not in sent_row:
                    sent_row[key] = len(out.sentences)
                    s_rows.append(len(out.sentences))
                    out.sentences.append(SentenceRecord(doc.doc_id, s.start, s.end))
                out.sentences[sent_row[key]].chunk_ids.append(len(out.chunks))
                ids.append(sent_row[key])
            c_rows.append(len(out.chunks))
            out.chunks.append(ChunkRecord(ch.chunk_id, doc.doc_id, ch.start, ch.end, ids))
            out.chunk_terms.append(textmod.terms(ch.text, doc.language))
        out.rows.append((doc, c_rows, s_rows))
    return out


def _reuse_previous(seg: _Segmented, previous: dict, encoders: EncoderSet, chunk_vecs, sent_vecs, latent: list | None = None):
    """Copy vectors, notes and latent codes of unchanged documents from the previous build;
    return what is left to embed ((kind, row, text)), to annotate ((doc, sentence rows)) and the
    reused count. ``latent``: one code per sentence row, None where it is still to be coded."""
    n_enc = len(encoders)
    to_embed: list[tuple[str, int, str]] = []
    to_annotate: list[tuple[Document, list[int]]] = []
    reused = 0
    for doc, c_rows, s_rows in seg.rows:
        old = previous.get(doc.content_hash)
        if old is not None and all(len(v) == len(c_rows) for v in old.chunk_vectors) and len(old.notes) == len(s_rows) \
                and len(old.chunk_vectors) == n_enc:
            for e in range(n_enc):
                chunk_vecs[e][c_rows], sent_vecs[e][s_rows] = old.chunk_vectors[e], old.sentence_vectors[e]
            for r, n in zip(s_rows, old.notes):
                seg.sentences[r].entities, seg.sentences[r].anaphor = n.entities, n.anaphor
            if latent is not None and old.latent is not None:
                for r, code in zip(s_rows, old.latent):
                    latent[r] = code
            reused += 1
            continue
        to_embed += [("c", r, doc.text[seg.chunks[r].start : seg.chunks[r].end]) for r in c_rows]
        to_embed += [("s", r, doc.text[seg.sentences[r].start : seg.sentences[r].end]) for r in s_rows]
        to_annotate.append((doc, s_rows))
    return to_embed, to_annotate, reused


def _annotate(seg: _Segmented, to_annotate: list[tuple[Document, list[int]]], step: Progress) -> None:
    for i, (doc, s_rows) in enumerate(to_annotate):
        notes = annotate(doc.text, doc.language, [(seg.sentences[r].start, seg.sentences[r].end) for r in s_rows])
        for r, n in zip(s_rows, notes):
            seg.sentences[r].entities, seg.sentences[r].anaphor = n.entities, n.anaphor
        step("annotating", i + 1, len(to_annotate))


def code_latent_terms(encoder, texts: list[str], step: Progress | None = None) -> list:
    """The latent-term codes of ``texts`` (both stores' builds), with progress."""
    out: list = []
    for i in range(0, len(texts), 16):
        out += encoder.latent_terms(texts[i : i + 16])
        if step:
            step("latent terms", len(out), len(texts))
    return out


def _code_latent(encoder, seg: _Segmented, latent: list, step: Progress) -> int:
    """Latent-term codes for the sentences the previous build did not have; returns how many."""
    todo = [(r, doc.text[seg.sentences[r].start : seg.sentences[r].end]) for doc, _, s_rows in seg.rows for r in s_rows
            if latent[r] is None]
    for (r, _), code in zip(todo, code_latent_terms(encoder, [t for _, t in todo], step)):
        latent[r] = code
    return len(todo)


def latent_matrix(codes: list, dim: int) -> sparse.csr_matrix:
    """Rows of (ids, weights) codes as a CSR matrix (float32) ``dim`` terms wide."""
    indptr = np.zeros(len(codes) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(c[0]) for c in codes])
    indices = np.concatenate([c[0] for c in codes]).astype(np.int32) if codes else np.zeros(0, np.int32)
    data = np.concatenate([c[1] for c in codes]).astype(np.float32) if codes else np.zeros(0, np.float32)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(codes), dim))


def embed_batches(enc, texts: list[str], coded: list[bool] | None = None, batch: int = 64):
    """Passage vectors of ``texts`` in batches: yields (positions, vectors, codes). Where
    ``coded`` is true the latent-term encoder also codes the text, in the same pass (codes is
    then a list of codes, else None); coded and uncoded texts never share a batch."""
    groups = [[i for i, c in enumerate(coded) if not c], [i for i, c in enumerate(coded) if c]] if coded else [range(len(texts))]
    for g, positions in enumerate(groups):
        positions = list(positions)
        for i in range(0, len(positions), batch):
            part = positions[i : i + batch]
            if coded and g == 1:
                vecs, codes = enc.encode_with_latent([texts[p] for p in part])
                yield part, vecs, codes
            else:
                yield part, enc.encode([texts[p] for p in part]), None


def _embed(encoders: EncoderSet, to_embed, chunk_vecs, sent_vecs, new_words: list[str], written: dict[str, str],
           word_vecs: dict, step: Progress, latent: list | None = None, latent_encoder: int | None = None) -> None:
    """Every encoder embeds the queued passages and sentences; the primary one the new words.
    The latent-term encoder codes the sentences it embeds in the same pass (``latent``: one code
    per sentence row)."""
    total = len(to_embed) * len(encoders) + len(new_words)
    done = 0
    texts = [t for _, _, t in to_embed]
    for e, enc in enumerate(encoders):
        coded = [kind == "s" for kind, _, _ in to_embed] if latent is not None and e == latent_encoder else None
        for part, vecs, codes in embed_batches(enc, texts, coded):
            for j, (p, vec) in enumerate(zip(part, vecs)):
                kind, row, _ = to_embed[p]
                (chunk_vecs[e] if kind == "c" else sent_vecs[e])[row] = vec
                if codes is not None:
                    latent[row] = codes[j]
            done += len(part)
            step("embedding", done, total)
    for i in range(0, len(new_words), 256):
        part = new_words[i : i + 256]
        word_vecs.update(zip(part, encoders.primary.encode([written[w] for w in part], query=True)))
        done += len(part)
        step("embedding", done, total)


def build_index(
    settings: Settings,
    embedder,
    *,
    skip_invalid: bool = False,
    progress: Progress | None = None,
    reuse: bool = True,
) -> dict:
    """Build the index from the document folders into settings.index_dir; return a summary.

    ``embedder`` is an ``EncoderSet`` (or one embedder). The documents are read and checked
    before any model loads; unchanged documents keep their vectors and notes from the previous
    build. Any failure leaves the previous build in place.
    """
    settings.check()
    encoders = EncoderSet.of(embedder)
    t0 = time.perf_counter()
    step = progress or (lambda stage, done, total: None)
    documents, skipped = load_corpus(settings, skip_invalid=skip_invalid)
    encoders.load()
    fingerprint = settings_fingerprint(settings, encoders.ids)
    seg = _segment(settings, documents)
    chunks, sentences = seg.chunks, seg.sentences

    previous, old_words = _previous_build(settings, fingerprint) if reuse else ({}, {})
    chunk_vecs = [np.zeros((len(chunks), e.dimension), dtype=np.float32) for e in encoders]
    sent_vecs = [np.zeros((len(sentences), e.dimension), dtype=np.float32) for e in encoders]
    latent_spec = fingerprint["latent_terms"]
    latent: list | None = [None] * len(sentences) if latent_spec else None
    to_embed, to_annotate, reused_docs = _reuse_previous(seg, previous, encoders, chunk_vecs, sent_vecs, latent)
    if settings.annotate:
        _annotate(seg, to_annotate, step)

    vocab_forms = vocabulary_forms(documents)
    vocab_pairs = [(w, t) for w, t, _ in vocab_forms]
    new_words = [w for w, _ in vocab_pairs if w not in old_words]
    word_vecs = dict(old_words)
    latent_index = latent_spec["encoder"] if latent_spec else None
    uncoded = sum(code is None for code in latent) if latent is not None else 0
    _embed(encoders, to_embed, chunk_vecs, sent_vecs, new_words, {w: form for w, _, form in vocab_forms}, word_vecs, step,
           latent, latent_index)
    latent_coded = 0
    if latent is not None:
        latent_encoder = encoders[latent_index]
        _code_latent(latent_encoder, seg, latent, step)  # what the embedding pass left (reused vectors)
        latent_coded = uncoded
        latent = latent_matrix(latent, latent_encoder.latent_dim)
    dim0 = encoders.primary.dimension
    vocab_vectors = np.stack([word_vecs[w] for w, _ in vocab_pairs]) if vocab_pairs else np.zeros((0, dim0), np.float32)

    step("indexing", 0, 1)
    kind = choose_index_type(settings, len(chunks))
    chunk_indexes = [make_faiss_index(v, kind) for v in chunk_vecs]
    sentence_indexes = [make_faiss_index(v, choose_index_type(settings, len(sentences))) for v in sent_vecs]
    bm25, term_ids, idf = build_lexical(seg.chunk_terms)
    vocab_term_ids = [term_ids.get(t, -1) for _, t in vocab_pairs]
    keep = [i for i, t in enumerate(vocab_term_ids) if t >= 0]

    build_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    table = {
        "build_id": build_id,
        "documents": [{**d.metadata(), "text": d.text, "path": d.path, "sha256": d.content_hash} for d in documents],
        "chunks": [[c.chunk_id, c.doc_id, c.start, c.end, c.sentence_ids] for c in chunks],
        "sentences": [[s.doc_id, s.start, s.end, s.chunk_ids, [list(e) for e in s.entities], int(s.anaphor)] for s in sentences],
        "vocab": [vocab_pairs[i][0] for i in keep],
        "roles": role_types(documents, sentences),
        "terms": list(term_ids),  # dict order is term id order
    }
    manifest = {
        **fingerprint,
        "build_id": build_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dimension": dim0,
        "dimensions": [e.dimension for e in encoders],
        "index_type": kind,
        "counts": {"documents": len(documents), "chunks": len(chunks), "sentences": len(sentences)},
        "documents": _manifest_documents(settings, documents),
    }
    _write_build(settings.index_dir, manifest, table, chunk_indexes, sentence_indexes, bm25, idf,
                 np.array([vocab_term_ids[i] for i in keep], dtype=np.int64), vocab_vectors[keep].astype(np.float16), latent)
    return {
        "build_id": build_id,
        "documents": len(documents),
        "chunks": len(chunks),
        "sentences": len(sentences),
        "index_type": kind,
        "reused_documents": reused_docs,
        "embedded_texts": len(to_embed) * len(encoders) + len(new_words),
        "latent_coded": latent_coded,
        "skipped": [str(e) for e in skipped],
        "seconds": round(time.perf_counter() - t0, 3),
    }


def _manifest_documents(settings: Settings, documents: list[Document]) -> dict[str, dict]:
    """doc_id -> where it lives (folder number and file name) and its content hash."""
    keys = {}
    for fi, folder in enumerate(corpus_dirs(settings)):
        for d in documents:
            if Path(d.path).parent == folder:
                keys[d.doc_id] = _document_key(fi, Path(d.path))
    return {d.doc_id: {"path": keys.get(d.doc_id, Path(d.path).name), "sha256": d.content_hash} for d in documents}


def _write_build(index_dir: Path, manifest: dict, table: dict, chunk_indexes, sentence_indexes, bm25, idf, vocab_terms, vocab_vectors,
                 latent: sparse.csr_matrix | None = None):
    import faiss

    index_dir = Path(index_dir)
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    tmp = builds / f".tmp-{manifest['build_id']}"
    final = builds / manifest["build_id"]
    try:
        tmp.mkdir()
        (tmp / "table.json").write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
        names = vector_files(len(chunk_indexes))
        for i, (ci, si) in enumerate(zip(chunk_indexes, sentence_indexes)):
            faiss.write_index(ci, str(tmp / names[2 * i]))
            faiss.write_index(si, str(tmp / names[2 * i + 1]))
        with open(tmp / "lexical.npz", "wb") as fh:
            extra = {}
            if latent is not None:
                extra = {"latent_data": latent.data.astype(np.float16), "latent_indices": latent.indices,
                         "latent_indptr": latent.indptr, "latent_dim": np.array([latent.shape[1]])}
            np.savez(
                fh,
                data=bm25.data, indices=bm25.indices, indptr=bm25.indptr, shape=np.array(bm25.shape),
                idf=idf, vocab_terms=vocab_terms, vocab_vectors=vocab_vectors, **extra,
            )
        files = all_files(len(chunk_indexes))
        manifest["files"] = {name: _sha256_file(tmp / name) for name in files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        for name in (*files, "manifest.json"):
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


def check_compatible(manifest: dict, settings: Settings, encoder_ids) -> None:
    expected = settings_fingerprint(settings, encoder_ids)
    for key, value in expected.items():
        if manifest.get(key) != value:
            raise IndexMismatchError(
                f"index was built with {key}={manifest.get(key)!r} but the settings ask for {value!r}; "
                f"run `summit build` to rebuild it"
            )


def documents_changed(manifest: dict, documents_dirs) -> str | None:
    """Why the index is stale with respect to the document folders, or None when it is up to date."""
    folders = [documents_dirs] if isinstance(documents_dirs, (str, Path)) else list(documents_dirs)
    current = {}
    for fi, folder in enumerate(folders):
        for path in document_paths(folder):
            current[_document_key(fi, path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "?"
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
    n_enc = len(manifest.get("encoders") or [manifest.get("model")])
    for name in all_files(n_enc):
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
        names = vector_files(n_enc)
        chunk_indexes = [faiss.read_index(str(build / names[2 * i])) for i in range(n_enc)]
        sentence_indexes = [faiss.read_index(str(build / names[2 * i + 1])) for i in range(n_enc)]
        with np.load(build / "lexical.npz", allow_pickle=False) as z:
            bm25 = sparse.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            idf, vocab_terms, vocab_vectors = z["idf"], z["vocab_terms"], z["vocab_vectors"].astype(np.float32)
            latent = None
            if "latent_indptr" in z.files:
                latent = sparse.csr_matrix((z["latent_data"].astype(np.float32), z["latent_indices"], z["latent_indptr"]),
                                           shape=(len(z["latent_indptr"]) - 1, int(z["latent_dim"][0])))
        documents = {d["doc_id"]: d for d in table["documents"]}
        chunks = [ChunkRecord(c[0], c[1], c[2], c[3], c[4]) for c in table["chunks"]]
        sentences = [SentenceRecord(s[0], s[1], s[2], s[3], tuple(tuple(e) for e in s[4]), bool(s[5])) for s in table["sentences"]]
        vocab = table["vocab"]
        roles = table.get("roles", {})
        term_ids = {term: i for i, term in enumerate(table["terms"])}
    except IndexCorruptError:
        raise
    except Exception as exc:
        raise IndexCorruptError(f"index in {build} cannot be read ({type(exc).__name__}); run `summit build --force`") from None
    if any(ci.ntotal != len(chunks) for ci in chunk_indexes) or any(si.ntotal != len(sentences) for si in sentence_indexes) \
            or bm25.shape[1] != len(chunks):
        raise IndexCorruptError(f"index in {build} is inconsistent (vector and table counts differ); run `summit build --force`")
    dims = list(manifest.get("dimensions") or [manifest.get("dimension")])
    if dims and manifest.get("dimension") != dims[0]:
        dims[0] = manifest.get("dimension")  # the two records disagree: the check below says so
    for ci, si, dim in zip(chunk_indexes, sentence_indexes, dims):
        if ci.d != dim or si.d != dim:
            raise IndexCorruptError(
                f"index vectors have dimension {ci.d} but the manifest says {dim}; run `summit build --force`"
            )
    if len(vocab) != len(vocab_terms) or len(vocab) != len(vocab_vectors):
        raise IndexCorruptError(f"index vocabulary in {build} is inconsistent; run `summit build --force`")
    if len(term_ids) != bm25.shape[0]:
        raise IndexCorruptError(f"index lexical table in {build} is inconsistent; run `summit build --force`")
    if (latent is not None and latent.shape[0] != len(sentences)) or (latent is None and manifest.get("latent_terms")):
        raise IndexCorruptError(f"index latent terms in {build} are inconsistent; run `summit build --force`")
    return LoadedIndex(build, manifest, documents, chunks, sentences, chunk_indexes, sentence_indexes, bm25, term_ids,
                       idf, vocab, [int(t) for t in vocab_terms], vocab_vectors, role_table=roles, latent=latent)


class IndexState(enum.Enum):
    OK = "ok"
    MISSING = "missing"  # no index yet: build one
    STALE = "stale"  # the documents changed since the build: rebuild
    MISMATCH = "mismatch"  # built with another model, settings or format: rebuild
    CORRUPT = "corrupt"  # damaged files or files from different builds: rebuild with --force


_STATE_ERRORS = {IndexState.MISSING: IndexMissingError, IndexState.MISMATCH: IndexMismatchError,
                 IndexState.CORRUPT: IndexCorruptError}


@dataclass(frozen=True)
class IndexStatus:
    """What the index on disk (or in Milvus) is, and why, in the words shown to the user."""

    state: IndexState
    reason: str = ""

    OK: ClassVar["IndexStatus"]

    @property
    def ok(self) -> bool:
        return self.state is IndexState.OK

    @property
    def rebuildable(self) -> bool:
        """Missing or stale: building is the normal next step (not a damaged or mismatched index)."""
        return self.state in (IndexState.MISSING, IndexState.STALE)

    def error(self) -> Exception:
        """The library error saying what is wrong (a stale index is reported as corrupt, as before)."""
        assert not self.ok, "an ok index has no error"
        return _STATE_ERRORS.get(self.state, IndexCorruptError)(self.reason)

    @classmethod
    def of_error(cls, exc: IndexMissingError | IndexMismatchError | IndexCorruptError) -> "IndexStatus":
        state = {IndexMissingError: IndexState.MISSING, IndexMismatchError: IndexState.MISMATCH}.get(type(exc), IndexState.CORRUPT)
        return cls(state, str(exc))

    @classmethod
    def stale(cls, reason: str | None) -> "IndexStatus":
        """From documents_changed(): None = up to date."""
        return cls.OK if reason is None else cls(IndexState.STALE, reason)


IndexStatus.OK = IndexStatus(IndexState.OK)


def index_status(settings: Settings, encoder_ids) -> IndexStatus:
    """OK when the index is present, intact, compatible and up to date; otherwise what and why not."""
    try:
        manifest = read_manifest(settings.index_dir)
        check_compatible(manifest, settings, encoder_ids)
        return IndexStatus.stale(documents_changed(manifest, corpus_dirs(settings)))
    except (IndexMissingError, IndexCorruptError, IndexMismatchError) as exc:
        return IndexStatus.of_error(exc)

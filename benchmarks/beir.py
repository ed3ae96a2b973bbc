"""BEIR interoperability: evaluate the assistant's retrieval on any BEIR-format dataset, and
export our own chunks and gold questions as one.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and ``qrels/<split>.tsv`` (header ``query-id corpus-id score``).

Evaluation writes every corpus document as a Markdown file with front matter into a temporary
documents folder and builds a temporary index from it with the normal build path, then ranks
each query with ``Assistant.search(query, k=10, mode=...)``. Metrics are document-level: a
retrieved chunk counts for its corpus document, each document at its best rank.
"""

from __future__ import annotations

import csv
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from assistant import text as textmod
from assistant.chunking import chunk_document
from assistant.errors import InvalidInputError
from assistant.evaluation import RANK_DEPTH, Question, mean_metrics, norm, ranking_metrics
from assistant.requests import MAX_QUESTION_CHARS
from assistant.settings import Settings

BEIR_METRICS = (f"ndcg@{RANK_DEPTH}", f"recall@{RANK_DEPTH}", f"mrr@{RANK_DEPTH}")
MAX_QUERY_CHARS = MAX_QUESTION_CHARS  # longer queries are cut, not refused


@dataclass
class BeirData:
    corpus: dict[str, dict]  # corpus id -> {"title", "text"}
    queries: dict[str, str]  # query id -> text
    qrels: dict[str, dict[str, int]]  # query id -> corpus id -> graded relevance
    path: str = ""

    def judged_queries(self) -> list[str]:
        """Queries with at least one relevant document, in file order (BEIR drops the others)."""
        return [q for q in self.queries if any(g > 0 for g in self.qrels.get(q, {}).values())]


# ---- reading and writing BEIR folders --------------------------------------------------------


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise InvalidInputError(f"BEIR folder is missing {path.name} ({path})")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InvalidInputError(f"{path}:{n}: not valid JSON ({exc})") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise InvalidInputError(f"{path}:{n}: each line must be a JSON object with an '_id'")
            rows.append(row)
    return rows


def load_beir(folder: Path, split: str = "test") -> BeirData:
    """Read a BEIR folder; any problem is an InvalidInputError naming the file (and line)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"BEIR folder {folder} not found")
    corpus: dict[str, dict] = {}
    for row in _read_jsonl(folder / "corpus.jsonl"):
        corpus[str(row["_id"])] = {"title": str(row.get("title") or ""), "text": str(row.get("text") or "")}
    queries = {str(r["_id"]): str(r.get("text") or "") for r in _read_jsonl(folder / "queries.jsonl")}
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise InvalidInputError(f"BEIR folder is missing qrels/{split}.tsv ({qrels_path})")
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, encoding="utf-8", newline="") as fh:
        for n, parts in enumerate(csv.reader(fh, delimiter="\t"), 1):
            if not parts or not "".join(parts).strip():
                continue
            if n == 1 and parts[0].strip().lower() in ("query-id", "query_id", "qid"):
                continue  # header
            try:
                qid, did, score = parts[0].strip(), parts[1].strip(), int(float(parts[2]))
            except (IndexError, ValueError):
                raise InvalidInputError(f"{qrels_path}:{n}: expected 'query-id<TAB>corpus-id<TAB>score'") from None
            qrels.setdefault(qid, {})[did] = score
    if not corpus:
        raise InvalidInputError(f"{folder / 'corpus.jsonl'} holds no documents")
    data = BeirData(corpus, queries, qrels, str(folder))
    if not data.judged_queries():
        raise InvalidInputError(f"{qrels_path} judges none of the queries in queries.jsonl")
    return data


def write_beir(folder: Path, corpus: list[dict], queries: list[dict], qrels: list[tuple[str, str, int]], split: str = "test") -> None:
    folder = Path(folder)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        with open(folder / name, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    with open(folder / "qrels" / f"{split}.tsv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["query-id", "corpus-id", "score"])
        w.writerows(qrels)


# ---- corpus -> documents folder ------------------------------------------------------------------


def document_markdown(doc_id: str, title: str, text: str) -> str:
    """One corpus document as an article: front matter (id, title, source BEIR, language) + text."""
    body = (text or "").replace("\x00", " ").strip() or title.strip()
    title = " ".join((title or "").split()) or " ".join(body.split()[:12])
    language = textmod.detect_language(f"{title}\n{body}") if body.strip() else "en"
    meta = {"id": doc_id, "title": title, "source": "BEIR", "language": language}
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=10_000) + "---\n" + body + "\n"


def write_documents(corpus: dict[str, dict], folder: Path) -> dict[str, str]:
    """Write each corpus document as ``<folder>/dNNNNNN.md``; return doc_id -> corpus id.
    Documents with neither title nor text are left out (they can never be retrieved)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mapping: dict[str, str] = {}
    for i, (cid, doc) in enumerate(corpus.items()):
        if not (doc.get("text") or "").strip() and not (doc.get("title") or "").strip():
            continue
        doc_id = f"d{i:06d}"
        (folder / f"{doc_id}.md").write_text(document_markdown(doc_id, doc.get("title", ""), doc.get("text", "")), encoding="utf-8")
        mapping[doc_id] = cid
    if not mapping:
        raise InvalidInputError("the BEIR corpus has no document with text")
    return mapping


# ---- ranking and scoring -----------------------------------------------------------------------

SearchFn = Callable[[str, str], list[str]]  # (query, mode) -> ranked doc ids (chunk-level, may repeat)


def score_queries(data: BeirData, search: SearchFn, modes: list[str], doc_map: dict[str, str] | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Rank every judged query in every mode and score it; ``doc_map`` maps the ids ``search``
    returns to corpus ids (identity when None). Returns {"modes": {mode: means}, "per_query": rows}."""
    qids = data.judged_queries()
    rows: list[dict] = []
    for mode in modes:
        for i, qid in enumerate(qids):
            text = " ".join(data.queries[qid].split())[:MAX_QUERY_CHARS]
            hits = search(text, mode) if text else []
            ranked = [doc_map.get(d, d) if doc_map is not None else d for d in hits]
            ranked = list(dict.fromkeys(ranked))  # document level: best rank per document
            qrels = data.qrels[qid]
            rows.append({
                "mode": mode,
                "query_id": qid,
                "query": data.queries[qid],
                "ranked": ranked[:RANK_DEPTH],
                "relevant": sorted(d for d, g in qrels.items() if g > 0),
                **ranking_metrics(ranked, qrels, RANK_DEPTH),
            })
            if progress:
                progress(mode, i + 1, len(qids))
    return {
        "modes": {m: mean_metrics([r for r in rows if r["mode"] == m], BEIR_METRICS) for m in modes},
        "per_query": rows,
    }


def evaluate_beir(folder: Path, settings: Settings, modes: list[str], *, data: BeirData | None = None, embedder=None,
                  split: str = "test", build_progress=None, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Index a BEIR corpus into a temporary index (normal build path) and score its queries.

    The corpus is indexed without boilerplate removal: it is not web pages. ``embedder`` lets a
    caller share an already loaded model; ``data`` one already read with ``load_beir``.
    """
    from assistant.service import Assistant

    data = data or load_beir(folder, split)
    with tempfile.TemporaryDirectory(prefix="summit-beir-") as tmp:
        docs_dir, index_dir = Path(tmp) / "documents", Path(tmp) / "index"
        doc_map = write_documents(data.corpus, docs_dir)
        beir_settings = settings.model_copy(update={"documents_dir": docs_dir, "index_dir": index_dir, "boilerplate_patterns": []})
        assistant = Assistant(beir_settings, embedder=embedder)
        summary = assistant.build(force=True, skip_invalid=True, progress=build_progress)

        def search(query: str, mode: str) -> list[str]:
            return [c.doc_id for c in assistant.search(query, k=RANK_DEPTH, mode=mode)]

        result = score_queries(data, search, modes, doc_map, progress)
    return {
        "dataset": str(folder),
        "split": split,
        "corpus": len(data.corpus),
        "indexed": summary.get("documents", len(doc_map)),
        "chunks": summary.get("chunks"),
        "queries": len(data.judged_queries()),
        **result,
    }


# ---- our documents and gold questions -> BEIR ------------------------------------------------


def export_beir(settings: Settings, questions: list[Question], outdir: Path, split: str = "test") -> dict:
    """Write the chunks of settings.documents_dir (corpus, _id = chunk id) and the gold questions
    (queries; qrels = chunks containing the evidence) as a BEIR folder. Chunks are made exactly
    as the index makes them, without loading the model.

    Left out, and counted in the returned summary: unanswerable questions and questions without
    evidence (no relevant chunk by definition), follow-ups (BEIR queries are single-turn), and
    questions whose evidence no chunk holds whole (it spans two chunks).
    """
    from assistant.index import load_corpus

    documents, _ = load_corpus(settings)
    corpus = []
    for doc in documents:
        for ch in chunk_document(doc.doc_id, doc.text, sentences_per_chunk=settings.chunk_sentences,
                                 overlap=settings.chunk_overlap, max_chars=settings.chunk_max_chars):
            corpus.append({"_id": ch.chunk_id, "title": doc.title, "text": ch.text})
    normed = [(row["_id"], norm(row["text"])) for row in corpus]
    queries, qrels = [], []
    skipped: dict[str, list[str]] = {"unanswerable": [], "follow_up": [], "no_relevant_chunk": []}
    for q in questions:
        if not q.answerable or not q.evidence:
            skipped["unanswerable"].append(q.id)
            continue
        if q.history:
            skipped["follow_up"].append(q.id)
            continue
        evs = [norm(e) for e in ([q.evidence] if isinstance(q.evidence, str) else q.evidence)]
        relevant = [cid for cid, text in normed if any(e in text for e in evs)]
        if not relevant:
            skipped["no_relevant_chunk"].append(q.id)
            continue
        queries.append({"_id": q.id, "text": q.question, "metadata": {"lang": q.lang, "answers": q.answers}})
        qrels += [(q.id, cid, 1) for cid in relevant]
    write_beir(outdir, corpus, queries, qrels, split)
    return {"folder": str(outdir), "corpus": len(corpus), "queries": len(queries), "qrels": len(qrels), "skipped": skipped}


"""The Assistant: loads the model and the index once, then answers and searches.

Shared by the CLI, the API and the evaluation scripts.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from . import conversation
from .answering import Answer, Answerer, Citation
from .cache import LRU
from .embedding import EncoderSet
from .errors import IndexCorruptError, IndexMismatchError, IndexMissingError
from .index import LoadedIndex, Progress, build_index, build_lock, index_status, load_index
from .requests import MAX_HISTORY, MAX_K, MAX_QUESTION_CHARS, validate  # noqa: F401 - the limits, defined once
from .retrieval import Retriever
from .settings import Settings

log = logging.getLogger("summit")


class Assistant:
    """Cheap to construct; ``load()`` loads the model and the index (building it if needed)."""

    def __init__(self, settings: Settings | None = None, embedder=None, *, engines_only: bool = False, warm_up: bool = True):
        self.settings = (settings or Settings()).check()
        # ``embedder``: an EncoderSet, or one embedder (tests); default: the configured encoders.
        # engines_only: the bundled encoders answer through their engines and the
        # SentenceTransformer is never loaded (same vectors; a cold CLI question in ~2 s, not ~12).
        # warm_up=False: per-sentence tables are filled on demand instead of for the whole corpus
        # when an index is installed (same answers; what a one-shot question wants).
        self.warm_up = warm_up
        self.embedder = EncoderSet.of(embedder) if embedder is not None else EncoderSet.from_settings(
            self.settings, sentence_transformer=not engines_only)
        self.index: LoadedIndex | None = None
        self.retriever: Retriever | None = None
        self.answerer: Answerer | None = None
        self._swap_lock = threading.Lock()
        self._answers = LRU(self.settings.answer_cache_size)

    # ---- lifecycle --------------------------------------------------------------------
    def load(self, *, rebuild: str = "stale", progress: Progress | None = None, background_model: bool = False) -> "Assistant":
        """rebuild: 'stale' builds when the index is missing or documents changed; 'any' also
        rebuilds a damaged or mismatched index (serve); 'never' only loads.
        background_model: finish loading the SentenceTransformer in the background (serve)."""
        if self.settings.store == "milvus":
            from . import milvus_store

            return milvus_store.load(self, rebuild=rebuild, progress=progress, background_model=background_model)
        status = index_status(self.settings, self.embedder.ids)
        if not status.ok and rebuild != "any" and not status.rebuildable:
            raise status.error()  # say what is wrong before spending seconds on the model
        if not status.ok:
            if rebuild == "never" or (not status.rebuildable and rebuild != "any"):
                raise status.error()
            log.warning("building the index: %s", status.reason)
            self.build(progress=progress)  # reads and checks the documents before any model loads
        else:
            self.embedder.load(wait=not background_model)
            try:
                self._install(load_index(self.settings.index_dir))
            except (IndexCorruptError, IndexMismatchError) as exc:
                if rebuild != "any":
                    raise
                log.warning("rebuilding the index: %s", exc)
                self.build(force=True, progress=progress)
        return self

    def build(self, *, force: bool = False, skip_invalid: bool = False, progress: Progress | None = None) -> dict:
        """Build (when needed or forced) and switch to the new index."""
        if self.settings.store == "milvus":
            from . import milvus_store

            return milvus_store.build_into(self, force=force, skip_invalid=skip_invalid, progress=progress)
        # No model load here: build_index reads and checks the documents first (a bad file is
        # reported at once), then loads the encoders.
        with build_lock(self.settings.index_dir):
            status = index_status(self.settings, self.embedder.ids)
            reason = None if status.ok else status.reason
            if status.ok and not force:
                try:
                    current = load_index(self.settings.index_dir)
                except (IndexCorruptError, IndexMismatchError) as exc:
                    reason = str(exc)  # up to date on paper, damaged on disk: rebuild (the message is the reason shown)
                else:
                    if self.index is None or self.index.build_id != current.build_id:
                        self._install(current)
                    return {"built": False, "reason": "index is up to date", "build_id": current.build_id}
            summary = build_index(self.settings, self.embedder, skip_invalid=skip_invalid, progress=progress)
        self._install(load_index(self.settings.index_dir))
        return {"built": True, "reason": reason or "forced", **summary}

    def _install(self, index: LoadedIndex) -> None:
        retriever = Retriever(index, self.embedder)
        from .scoring import default_weights_file, load_weights

        answerer = Answerer(retriever, load_weights(self.settings.weights_file or default_weights_file(self.settings.latent_terms)), min_confidence=self.settings.min_confidence)
        retriever.set_query_means(answerer.weights.query_means if self.settings.centring else None)
        if self.warm_up:
            retriever.warm_up()
            answerer.warm_up()
        with self._swap_lock:  # readers take the three together
            self.index, self.retriever, self.answerer = index, retriever, answerer

    def reload(self) -> dict:
        """Load the current build from disk (after `summit build` in another process)."""
        if self.settings.store == "milvus":
            from . import milvus_store

            return milvus_store.reload(self)
        index = load_index(self.settings.index_dir)
        self._install(index)
        return {"build_id": index.build_id}

    # ---- questions --------------------------------------------------------------------
    def _parts(self):
        with self._swap_lock:
            if self.retriever is None:
                raise IndexMissingError("the assistant is not loaded; call load() first")
            return self.index, self.retriever, self.answerer

    def _resolve(self, retriever: Retriever, answerer: Answerer, question: str, history: list[str], depth: int = 0) -> conversation.Turn:
        """The conversation context of a question: the earlier questions (each resolved the same
        way, up to MAX_CONTEXT_DEPTH turns back) and their short answers, weighted down with
        every turn; no word list decides what is a follow-up (conversation.py)."""
        if not history or depth >= conversation.MAX_CONTEXT_DEPTH:
            return conversation.Turn(question, [], None)
        previous, earlier = history[-1], history[:-1]
        prev_turn = self._resolve(retriever, answerer, previous, earlier, depth + 1)
        prev_answer = self._answer_with(retriever, answerer, prev_turn, earlier, k=1, mode="hybrid")
        return conversation.follow(question, prev_turn, prev_answer, answerer.weights.settings)

    def _answer_with(self, retriever, answerer, turn: conversation.Turn, history: list[str], *, k: int, mode: str) -> Answer:
        query = retriever.analyze(turn.question, turn.context, history=history)
        query = conversation.attach(query, turn)
        retrieved = retriever.retrieve(query, mode, n=max(30, k * 3))
        return answerer.answer(retrieved, k=k)

    def ask(self, question: str, history: list[str] | None = None, k: int | None = None, mode: str | None = None) -> Answer:
        t0 = time.perf_counter()
        q, hist, k, mode = validate(question, history, self.settings.top_k if k is None else k, mode or self.settings.mode)
        index, retriever, answerer = self._parts()
        # Answers are pure functions of (index build, question, history, k, mode): an embedded
        # widget sees the same questions again and again.
        key = (index.build_id, q, tuple(hist), k, mode)
        cached = self._answers.get(key)
        if cached is None:
            turn = self._resolve(retriever, answerer, q, hist)
            answer = self._answer_with(retriever, answerer, turn, hist, k=k, mode=mode)
            answer.question = q
            self._answers.put(key, answer)
        else:
            answer = cached
        answer = dataclasses.replace(answer, citations=list(answer.citations))
        answer.took_ms = round((time.perf_counter() - t0) * 1000, 2)
        return answer

    def search(self, question: str, k: int | None = None, mode: str | None = None) -> list[Citation]:
        """Ranked passages without answer extraction."""
        q, _, k, mode = validate(question, [], self.settings.top_k if k is None else k, mode or self.settings.mode)
        _, retriever, answerer = self._parts()
        query = retriever.analyze(q)
        scored = answerer.score(retriever.retrieve(query, mode, n=max(30, k * 3)))
        return answerer.citations(scored, k)

    # ---- documents --------------------------------------------------------------------
    def documents(self) -> list[dict]:
        index, _, _ = self._parts()
        return [{k: v for k, v in d.items() if k not in ("text", "path", "sha256")} for d in index.document_list()]

    def document(self, doc_id: str) -> dict | None:
        index, _, _ = self._parts()
        d = index.document(doc_id)
        return None if d is None else {k: v for k, v in d.items() if k not in ("path", "sha256")}

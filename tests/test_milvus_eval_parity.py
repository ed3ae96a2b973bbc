"""The held-out evaluation through the Milvus store scores within 0.02 of the FAISS store on
every metric (the real bundled models, the full eval corpus: documents/ + eval/corpus/, the dev
and test splits of eval/splits.json, every retrieval mode).

Both stores are built from the same vectors: the encoders are wrapped in a cache, so the second
build embeds nothing again (the comparison is of the stores, and CI is spared a second
embedding of the corpus). About 4 minutes on 2 cores, mostly the first build and the 3 x 461
questions asked twice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

from assistant import annotate as annotate_mod  # noqa: E402
from assistant import evaluation as ev  # noqa: E402
from assistant import index as faiss_index  # noqa: E402
from assistant import milvus_store as ms  # noqa: E402
from assistant.embedding import EncoderSet  # noqa: E402
from assistant.service import Assistant  # noqa: E402
from assistant.settings import Settings  # noqa: E402

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 0.02


class CachingEncoder:
    """One real encoder with a memo of what it embedded (same vectors, embedded once)."""

    def __init__(self, inner):
        self.inner = inner
        self.memo: dict[tuple[str, bool], np.ndarray] = {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def load(self, *, wait: bool = True):
        self.inner.load(wait=wait)
        return self

    def encode(self, texts, *, batch_size: int = 64, progress: bool = False, query: bool = False):
        missing = [t for t in dict.fromkeys(texts) if (t, query) not in self.memo]
        if missing:
            for t, v in zip(missing, self.inner.encode(missing, batch_size=batch_size, query=query)):
                self.memo[(t, query)] = v
        if not texts:
            return self.inner.encode([], query=query)
        return np.stack([self.memo[(t, query)] for t in texts]).astype(np.float32)


def numeric_metrics(summary: dict, prefix: str = "") -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in summary.items():
        if key == "latency_ms":
            continue
        if isinstance(value, dict):
            out.update(numeric_metrics(value, f"{prefix}{key}."))
        elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            out[f"{prefix}{key}"] = value
    return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("milvus-parity")
    base = Settings(documents_dir=REPO / "documents", extra_documents_dirs=[REPO / "eval" / "corpus"],
                    index_dir=tmp / "faiss", milvus_uri=str(tmp / "milvus.db"), answer_cache_size=0)
    questions = (ev.load_question_files(ev.split_files(REPO / "eval" / "splits.json", "dev"))
                 + ev.load_question_files(ev.split_files(REPO / "eval" / "splits.json", "test")))
    encoders = EncoderSet([CachingEncoder(m) for m in EncoderSet.from_settings(base)])
    notes: dict = {}
    real_annotate = annotate_mod.annotate

    def cached_annotate(text, language, sentences):
        key = (text, language, tuple(sentences))
        if key not in notes:
            notes[key] = real_annotate(text, language, sentences)
        return notes[key]

    faiss_index.annotate, ms.annotate = cached_annotate, cached_annotate
    try:
        out = {}
        for store in ("faiss", "milvus"):
            assistant = Assistant(base.model_copy(update={"store": store}), embedder=encoders).load()
            assert assistant.index.kind == store
            out[store] = ev.build_report(ev.run_modes(assistant, questions, list(ev.EVAL_MODES)))["modes"]
            out[f"{store}_counts"] = assistant.index.counts()
            if store == "milvus":
                ms.connection(assistant).close()
    finally:
        faiss_index.annotate = ms.annotate = real_annotate
    out["questions"] = len(questions)
    return out


def test_same_corpus_in_both_stores(reports):
    assert reports["faiss_counts"] == reports["milvus_counts"]
    assert reports["faiss_counts"]["documents"] >= 18 and reports["questions"] > 400


@pytest.mark.parametrize("mode", ev.EVAL_MODES)
def test_every_metric_within_tolerance(reports, mode):
    faiss, milvus = numeric_metrics(reports["faiss"][mode]), numeric_metrics(reports["milvus"][mode])
    assert faiss.keys() == milvus.keys()
    assert faiss["hit@1"] is not None and faiss["answer_accuracy"] is not None
    far = {}
    for name, want in faiss.items():
        got = milvus[name]
        if want is None or got is None:
            assert want == got, name
            continue
        if name.endswith("false_abstentions") or name.endswith(".questions"):
            continue  # counts; their rates are compared
        if abs(got - want) > TOLERANCE:
            far[name] = (want, got)
    assert not far, f"{mode}: metrics further than {TOLERANCE} from FAISS: {far}"

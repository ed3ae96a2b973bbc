"""Small fakes for the Milvus store tests: deterministic encoders, a fake annotator, invented
articles, and helpers that build the same corpus into the FAISS store and the Milvus store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from assistant.annotate import SentenceNotes
from assistant.embedding import EncoderSet
from assistant.settings import Settings
from assistant.text import fold, words


class HashEncoder:
    """Hashed character trigrams of accent-folded words: texts sharing words get similar
    vectors. ``query=True`` changes nothing (as USE)."""

    def __init__(self, dimension: int, model_id: str, salt: str = ""):
        self.dimension = dimension
        self.id = model_id
        self.spec = model_id
        self.salt = salt
        self.texts_embedded = 0

    def load(self, *, wait: bool = True) -> "HashEncoder":
        return self

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        for w in words(fold(text)):
            padded = f"#{w}#"
            for i in range(len(padded) - 2):
                h = int.from_bytes(hashlib.blake2b((self.salt + padded[i : i + 3]).encode(), digest_size=4).digest(), "little")
                v[h % self.dimension] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode(self, texts, *, batch_size: int = 64, progress: bool = False, query: bool = False) -> np.ndarray:
        self.texts_embedded += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)


def encoders() -> EncoderSet:
    """Two encoders of different sizes, as the real pair (USE 512 + e5 384)."""
    return EncoderSet([HashEncoder(96, "fake-a-96"), HashEncoder(64, "fake-b-64", salt="b")])


def fake_annotate(text: str, language: str, sentences: list[tuple[int, int]]) -> list[SentenceNotes]:
    """Entities = capitalised words after the first; anaphor = a sentence opening with a pronoun."""
    out = []
    for start, end in sentences:
        sent = text[start:end]
        ents, pos = [], 0
        for i, w in enumerate(sent.split()):
            at = sent.index(w, pos)
            pos = at + len(w)
            clean = w.strip(".,;:!?«»\"()")
            if i > 0 and clean[:1].isupper() and len(clean) > 2:
                a = start + at + w.index(clean)
                ents.append((a, a + len(clean), "PER" if clean.endswith("n") else "ORG"))
        anaphor = sent.split()[0] in ("Il", "Elle", "Ce", "Cette", "It", "This", "They") if sent.split() else False
        out.append(SentenceNotes(tuple(ents), anaphor))
    return out


ARTICLES = {
    "sommet.md": """---
title: "Le sommet de Paris sur l'intelligence artificielle"
source: Gazette Exemple
language: fr
published: 2025-02-09
---
Le sommet réunira des chefs d'État au Grand Palais les 10 et 11 février. Emmanuel Macron accueillera les délégations.
Il annoncera une fondation dotée de 2,5 milliards d'euros. Cette fondation financera des projets d'intérêt général.

La Chine sera représentée par le vice-Premier ministre Ding Xuexiang. Le vice-président américain J.D. Vance viendra aussi.
Ce dernier prononcera un discours remarqué sur la régulation.
""",
    "investissements.md": """---
title: "Des investissements massifs annoncés"
source: Journal Inventé
language: fr
published: 2025-02-10
---
Les Émirats arabes unis investiront entre 30 et 50 milliards d'euros dans un campus consacré à l'intelligence artificielle.
Un centre de données géant sera construit en France. Il consommera un gigawatt d'électricité.

Brookfield prévoit 20 milliards d'euros d'investissements. Le montant total annoncé atteint 109 milliards d'euros.
""",
    "declaration.md": """---
title: "The summit declaration"
source: Example Times
language: en
published: 2025-02-11
---
Sixty countries signed the declaration on inclusive and sustainable artificial intelligence. The United States and the United Kingdom did not sign it.
It calls for open and ethical AI. They argued that the text said too little about security.

India will host the next summit. Narendra Modi co-chaired the Paris meeting with Emmanuel Macron.
""",
    "talents.md": """---
title: "Attirer les talents"
source: Gazette Exemple
language: fr
published: 2025-02-12
---
Clara Chappaz veut attirer aujourd'hui les chercheurs étrangers. Elle présentera un programme de bourses pour les doctorants.
Les laboratoires publics recruteront trois cents ingénieurs supplémentaires d'ici deux ans.
Selon la ministre Clara Chappaz, le plan est prêt. La ministre Clara Chappaz le présentera au Sénat.
""",
}

CHANGED_TALENTS = ARTICLES["talents.md"].replace("trois cents ingénieurs", "cinq cents ingénieurs et chercheuses")

NEW_ARTICLE = """---
title: "Mistral et son assistant"
source: Journal Inventé
language: fr
published: 2025-02-13
---
Mistral AI a présenté son assistant Le Chat lors du sommet. La start-up parisienne lève des fonds auprès d'investisseurs européens.
"""


def write_articles(folder: Path, articles: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.md"):
        old.unlink()
    for name, body in (ARTICLES if articles is None else articles).items():
        (folder / name).write_text(body, encoding="utf-8")
    return folder


def settings(tmp: Path, docs: Path, **overrides) -> Settings:
    base = dict(documents_dir=docs, index_dir=tmp / "faiss", extra_models=[], store="milvus",
                milvus_uri=str(tmp / "milvus.db"), milvus_grace_seconds=0.0, milvus_timeout=5.0)
    base.update(overrides)
    return Settings(**base).check()


# ---- a milvus-lite server in its own process (what several replicas share) ----------------------

import time  # noqa: E402

from benchmarks.servers import LiteServer, free_port  # noqa: E402,F401  (the harnesses' own; tests import them from here)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    """Poll until predicate() is truthy; return its value (raises AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(interval)

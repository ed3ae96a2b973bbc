"""A small deterministic embedder for unit tests: hashed character trigrams of accent-folded words.

Texts sharing words get similar vectors, so rankings are meaningful, and nothing is downloaded.
"""

from __future__ import annotations

import hashlib

import numpy as np

from assistant.text import fold, words


class FakeEmbedder:
    def __init__(self, dimension: int = 512, model_id: str = "fake-trigram-512"):
        self.dimension = dimension
        self.id = model_id
        self.spec = model_id
        self.calls = 0
        self.texts_embedded = 0

    def load(self, *, wait: bool = True) -> "FakeEmbedder":
        return self

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, dtype=np.float32)
        for w in words(fold(text)):
            padded = f"#{w}#"
            for i in range(len(padded) - 2):
                h = int.from_bytes(hashlib.blake2b(padded[i : i + 3].encode(), digest_size=4).digest(), "little")
                v[h % self.dimension] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode(self, texts, *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)


ARTICLE_A = """---
title: "Le sommet de Paris"
source: Exemple
language: fr
---
Le sommet réunira des chefs d'État au Grand Palais les 10 et 11 février.
La fondation sera dotée de 2,5 milliards d'euros. Le vice-président J.D. Vance viendra à Paris.
Bienvenue sur Exemple
Je crée mon compte
"""

ARTICLE_B = """---
title: "Les invités"
source: Autre
language: fr
published: 2025-02-01
---
Le dirigeant indien Narendra Modi co-présidera l'événement. La Chine sera représentée par Ding Xuexiang.
"""


def write_corpus(folder, articles: dict[str, str] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in (articles or {"a.md": ARTICLE_A, "b.md": ARTICLE_B}).items():
        (folder / name).write_text(body, encoding="utf-8")

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

    def encode(self, texts, *, batch_size: int = 64, progress: bool = False, query: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)


class FakeLatentEmbedder(FakeEmbedder):
    """A FakeEmbedder that also codes latent terms, as e5's sparse head does (its id says e5, so
    builds code the sentences): each accent-folded word hashes to one term, weight 1, normalised."""

    latent_dim = 997

    def __init__(self, dimension: int = 96, model_id: str = "e5-small@fake-latent"):
        super().__init__(dimension, model_id)
        self.latent_texts = 0
        self.joint_texts = 0  # texts embedded and coded in one call, as the fused engine does

    @property
    def has_latent_terms(self) -> bool:
        return True

    def encode_with_latent(self, texts, *, query=False):
        self.joint_texts += len(texts)
        return self.encode(texts, query=query), self.latent_terms(texts, query=query)

    def latent_terms(self, texts, *, query=False):
        from assistant.embedding import normalise_code

        self.latent_texts += len(texts)
        out = []
        for text in texts:
            ids = sorted({int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little") % self.latent_dim
                          for w in words(fold(text.lower())) if len(w) > 2})
            out.append(normalise_code(ids, np.ones(len(ids), np.float32)))
        return out


# Invented articles about an invented event (no sentence of the real corpus).
ARTICLE_A = """---
title: "Le forum de Lyon sur la robotique"
source: Exemple
language: fr
---
Le forum réunira des industriels à la Cité internationale les 14 et 15 mars.
La coopérative sera dotée de 3,2 milliards d'euros. La commissaire Ilona Vesterberg viendra à Lyon.
Bienvenue sur Exemple
Je crée mon compte
"""

ARTICLE_B = """---
title: "Les invités du forum"
source: Autre
language: fr
published: 2025-03-01
---
La présidente chilienne Rosa Quintana coprésidera le forum. Le Japon sera représenté par le ministre Kenji Morohashi.
"""


def write_corpus(folder, articles: dict[str, str] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in (articles or {"a.md": ARTICLE_A, "b.md": ARTICLE_B}).items():
        (folder / name).write_text(body, encoding="utf-8")

"""Language centring of the dense cosines: a question and a sentence are compared after each has
lost the direction its language and its kind of text share.

A multilingual encoder does not map an English question and the French sentence that answers it
to the same place: every English text shares a component, every French text another, and
questions share one that passages do not. Left in, those components make an English question
prefer English sentences whatever they say, and let a few "hub" sentences rank high for every
question. Taking each side's mean away (the mean of the corpus's sentences of that language for a
sentence, the mean of typical questions in that language for a question) leaves what the texts
say (Libovický et al., 2020, "On the language neutrality of pre-trained multilingual
representations"; the same correction as CSLS for cross-lingual word vectors).

- Passage means come from the corpus itself, per encoder, per level (sentence or chunk) and per
  document language, shrunk toward the corpus's mean when a language has few sentences.
- Question means are fitted on the dev questions (``summit fit``; weights.json ``query_means``),
  per encoder and question language; a language without one uses the mean of the others.

The core here is pure (arrays in, arrays out); Retriever keeps the means and the caches.
"""

from __future__ import annotations

import numpy as np

# Pseudo-count of the shrinkage toward the corpus mean: a language with n sentences gets
# (n * its mean + SHRINK * corpus mean) / (n + SHRINK), so one short article in a language does
# not have its own topic taken away as if it were its language.
SHRINK = 50.0


def unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-9)


def passage_means(vectors: np.ndarray, languages, shrink: float = SHRINK) -> dict[str, np.ndarray]:
    """The mean vector of each language's rows, shrunk toward the mean of all rows; "" holds the
    mean of all rows (for a row of a language not seen here)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    languages = np.asarray(list(languages), dtype=object)
    if not len(vectors):
        return {}
    overall = vectors.mean(axis=0)
    out = {"": overall.astype(np.float32)}
    for lang in sorted(set(languages.tolist())):
        rows = vectors[languages == lang]
        n = float(len(rows))
        out[lang] = ((n * rows.mean(axis=0) + shrink * overall) / (n + shrink)).astype(np.float32)
    return out


def query_means(vectors_by_language: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """The mean question vector of each language (fitted on dev questions)."""
    return {lang: np.mean(np.stack(vs), axis=0).astype(np.float32) for lang, vs in sorted(vectors_by_language.items()) if vs}


def mean_for(means: dict[str, np.ndarray], language: str | None) -> np.ndarray | None:
    """The mean of a language, else the average of the languages known (None when none is)."""
    got = means.get(language or "")
    if got is not None:
        return got
    known = [v for k, v in means.items() if k]
    return np.mean(np.stack(known), axis=0).astype(np.float32) if known else means.get("")


def centre_query(vector: np.ndarray, means: dict[str, np.ndarray], language: str | None) -> np.ndarray:
    """The question vector without its language's question mean, unit length."""
    mu = mean_for(means, language)
    v = np.asarray(vector, dtype=np.float32)
    return unit(v - mu) if mu is not None else v


def centred_cosines(query: np.ndarray, vectors: np.ndarray, row_means: np.ndarray) -> np.ndarray:
    """Cosine of a centred question with each row after its language's passage mean is taken
    away: (q . (v - mu)) / |v - mu|."""
    d = np.asarray(vectors, dtype=np.float32) - row_means
    return (d @ query) / np.maximum(np.linalg.norm(d, axis=1), 1e-9)

"""Latent terms with the real e5 engine on the bundled articles: the sentences are coded at
build time, a question is coded alike, and the sentence that answers it shares more latent
terms with it than the articles' sentences typically do, in French and in English."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.embedding import LATENT_TOP_K

pytestmark = pytest.mark.integration


def test_the_bundled_index_holds_a_code_per_sentence(summit_assistant):
    index = summit_assistant.index
    assert index.manifest["latent_terms"] == {"encoder": 1, "top_k": LATENT_TOP_K}
    assert index.latent.shape[0] == index.counts()["sentences"]
    nnz = np.diff(index.latent.indptr)
    assert nnz.min() > 0 and nnz.max() <= LATENT_TOP_K
    norms = np.sqrt(np.asarray(index.latent.multiply(index.latent).sum(axis=1)).ravel())
    assert np.allclose(norms, 1.0, atol=1e-2)


@pytest.mark.parametrize("question", ["Qui co-préside le sommet ?", "Who co-chairs the summit?"])
def test_the_answering_sentence_shares_more_latent_terms_than_most(summit_assistant, question):
    index, retriever = summit_assistant.index, summit_assistant.retriever
    code = retriever.latent_code(question)
    assert code is not None and 0 < np.count_nonzero(code) <= LATENT_TOP_K
    scores = index.latent_scores(range(index.counts()["sentences"]), code)
    sid = next(i for i in range(len(index.sentences)) if "co-présidera" in index.sentence_text(i))
    assert scores[sid] > np.percentile(scores, 90)

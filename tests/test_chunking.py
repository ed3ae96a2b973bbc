"""Sentence splitting and chunk offsets: text[start:end] is exactly the chunk, always."""

from __future__ import annotations

from hypothesis import given, settings as hsettings, strategies as st

from assistant.chunking import chunk_document, split_sentences


def sentences(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


def test_initials_and_abbreviations_do_not_end_sentences():
    text = "D'après l'AFP, le vice-président J.D. Vance se rendra à Paris. M. Macron l'accueillera."
    assert sentences(text) == [
        "D'après l'AFP, le vice-président J.D. Vance se rendra à Paris.",
        "M. Macron l'accueillera.",
    ]


def test_english_titles_before_a_name_do_not_end_sentences():
    text = "Sen. Ada Strand and Gov. Rolf Berg met Capt. Ivo Lind in Ostend. They left on Monday."
    assert sentences(text) == ["Sen. Ada Strand and Gov. Rolf Berg met Capt. Ivo Lind in Ostend.", "They left on Monday."]


def test_acronym_at_the_end_of_a_sentence_ends_it():
    assert sentences("Paris va devenir la capitale de l'IA. Dès le 6 février, tout commence.") == [
        "Paris va devenir la capitale de l'IA.",
        "Dès le 6 février, tout commence.",
    ]


def test_french_quotes_and_typographic_apostrophes():
    text = "Il a dit « Nous serons prêts. » Puis l’Élysée a confirmé. “Yes.” Then he left!"
    assert sentences(text) == ["Il a dit « Nous serons prêts. »", "Puis l’Élysée a confirmé.", "“Yes.”", "Then he left!"]


def test_english_sentences_and_decimal_numbers():
    assert sentences("It costs 2.5 billion euros. Who pays? The state does.") == [
        "It costs 2.5 billion euros.", "Who pays?", "The state does."]


def test_chunks_are_windows_with_overlap_within_paragraphs():
    text = "Un. Deux. Trois. Quatre. Cinq.\nSix seul."
    chunks = chunk_document("d", text, sentences_per_chunk=3, overlap=1)
    assert [c.text for c in chunks] == ["Un. Deux. Trois.", "Trois. Quatre. Cinq.", "Six seul."]
    assert [c.chunk_id for c in chunks] == ["d#0", "d#1", "d#2"]


def test_max_chars_closes_a_window_early():
    text = "A" * 50 + ". " + "B" * 50 + ". " + "C" * 50 + "."
    chunks = chunk_document("d", text, sentences_per_chunk=3, overlap=0, max_chars=110)
    assert len(chunks) == 2 and chunks[1].text.startswith("C")


_word = st.text(alphabet="abcdeéèàçABCÉJ’'«»", min_size=1, max_size=8)
_sentence = st.builds(lambda ws, p: " ".join(ws) + p, st.lists(_word, min_size=1, max_size=8), st.sampled_from([".", "!", "?", "…", " ?", "", "."]))
_paragraph = st.builds(" ".join, st.lists(_sentence, min_size=1, max_size=6))
_document = st.builds("\n".join, st.lists(_paragraph, min_size=1, max_size=5))


@hsettings(max_examples=300, deadline=None)
@given(_document, st.integers(1, 5), st.integers(0, 4))
def test_offsets_always_point_at_the_chunk_text(text, size, overlap):
    overlap = min(overlap, size - 1)
    chunks = chunk_document("doc", text, sentences_per_chunk=size, overlap=overlap)
    covered = set()
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text
        assert c.sentences[0].start == c.start and c.sentences[-1].end == c.end
        for s in c.sentences:
            assert c.start <= s.start < s.end <= c.end
            assert text[s.start : s.end].strip() == text[s.start : s.end]
            covered.update(range(s.start, s.end))
    # Every non-space character of the document is in some sentence of some chunk.
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())

"""End to end with the real bundled model (multilingual USE) on the real articles."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

MODI = "Narendra Modi co-présidera"


@pytest.mark.parametrize("question", ["Who co-chairs the summit?", "Qui co-préside le sommet ?"])
def test_co_chair_question_cites_the_modi_sentence_first(summit_assistant, question):
    answer = summit_assistant.ask(question)
    assert answer.found
    assert "Modi" in answer.answer
    first = answer.citations[0]
    assert MODI in first.passage
    doc = summit_assistant.document(first.doc_id)["text"]
    (h0, h1), = first.highlights
    assert MODI in doc[h0:h1]


@pytest.mark.parametrize(
    "question",
    [
        "Quelle est la recette de la tartiflette ?",
        "What will the weather be like in Tokyo tomorrow?",
        "Who won the football world cup in 1998?",
    ],
)
def test_off_topic_questions_abstain(summit_assistant, question):
    answer = summit_assistant.ask(question)
    assert not answer.found and answer.citations == []


def test_english_question_finds_the_french_amount(summit_assistant):
    answer = summit_assistant.ask("How much money will the new AI foundation receive?")
    assert answer.found and "2,5 milliards d'euros" in answer.answer
    assert "2,5 milliards" in answer.citations[0].passage


def test_follow_up_uses_the_conversation(summit_assistant):
    alone = summit_assistant.ask("Which company did he co-found?")
    followed = summit_assistant.ask("Which company did he co-found?", history=["Who is Arthur Mensch?"])
    assert followed.found and "Mistral" in followed.answer
    assert "Mistral" not in alone.answer or not alone.found or alone.citations[0].passage != followed.citations[0].passage


def test_the_rtl_footer_is_never_cited(summit_assistant):
    for q in ["Comment activer les notifications RTL ?", "Je crée mon compte RTL", "Rejoignez la communauté RTL2 et Fun Radio"]:
        for mode in ("hybrid", "dense", "lexical"):
            answer = summit_assistant.ask(q, mode=mode, k=20)
            for c in answer.citations:
                assert "Bienvenue" not in c.passage and "Je crée mon compte" not in c.passage
                assert "notification" not in c.passage.lower()
            for hit in summit_assistant.search(q, k=20, mode=mode):
                assert "Je crée mon compte" not in hit.passage and "Bienvenue sur RTL" not in hit.passage


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_every_mode_answers_a_plain_question(summit_assistant, mode):
    answer = summit_assistant.ask("Quel vice-président américain se rendra à Paris ?", mode=mode)
    assert answer.found and any("Vance" in c.passage for c in answer.citations[:3])

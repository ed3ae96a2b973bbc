"""Adding articles (issue #11), without the model: extraction of each fixture layout (metadata, no
boilerplate), type sniffing and refusals, PDF and text handling, and add/delete round trips on a
small invented corpus with the fake embedder (only the new document is embedded; a failed
build leaves nothing behind)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from assistant import ingest
from assistant.documents import document_paths, load_documents
from assistant.errors import DocumentError, IngestError, InvalidInputError
from assistant.index import documents_changed, read_manifest
from assistant.service import Assistant
from assistant.settings import DEFAULT_BOILERPLATE_PATTERNS, Settings

from .fakes import FakeEmbedder, write_corpus
from .pdfmaker import make_pdf

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
PATTERNS = DEFAULT_BOILERPLATE_PATTERNS

# What each fixture page is, and the text of its chrome: every item must be gone from the
# extracted text. (These strings describe the fixtures; no rule in the code knows them.)
LAYOUTS = {
    "fr-news.html": {
        "meta": {"title": "Sommet IA : au Grand Palais, les associations réclament une IA frugale",
                 "source": "La Gazette du Numérique", "published": "2025-02-09", "language": "fr",
                 "url": "https://www.gazette-numerique.example/tech/2025/02/09/sommet-ia-associations-ia-frugale_4821.html"},
        "article": ["a recueilli 3 200 signatures", "porte-parole du collectif",
                    "À la veille des réunions des chefs d'État",  # the standfirst, in the headline's <header>
                    "La déclaration finale du sommet doit être présentée mardi 11 février au Grand Palais."],
        "navigation": ["Politique", "Culture", "Accueil ›"],
        "consent": ["842 partenaires", "Accepter et fermer", "Continuer sans accepter", "Paramétrer mes choix"],
        "related": ["À lire aussi", "PSG", "galette des rois", "épisode neigeux", "Les plus lus", "Loto", "XV de France"],
        "subscription": ["réservé aux abonnés", "68 %", "Je m'abonne", "Se connecter", "La lettre Tech", "Inscrivez-vous", "S'abonner"],
        "footer": ["Mentions légales", "Conditions générales de vente", "Plan du site", "Toute reproduction interdite"],
        "other": ["Partager sur X", "Mots-clés"],
    },
    "en-wire.html": {
        "meta": {"title": "US and Britain decline to sign Paris AI summit statement", "source": "Continental Press Agency",
                 "published": "2025-02-11", "language": "en",
                 "url": "https://www.cpa-wire.example/technology/us-britain-decline-paris-ai-statement-2025-02-11/"},
        "article": ["backed by 58 countries", "JD Vance warned", "hosted by India", "109 billion euros"],
        "navigation": ["Markets", "Lifestyle"],
        "consent": ["We use cookies", "Accept all", "Reject all", "Manage preferences"],
        "related": ["Read more", "Oil prices slip", "Casper Ruud", "40,000 homes", "More from Technology", "Chipmaker",
                    "satellite launch", "chicken costume"],
        "subscription": ["Tech Briefing", "Subscribe now", "Sign up"],
        "footer": ["Terms of use", "Privacy", "All quotes delayed", "All rights reserved"],
        "other": ["4 min read"],
    },
    "gov-release.html": {
        "meta": {"title": "Lancement de l'Institut national pour l'évaluation et la sécurité de l'IA",
                 "source": "Ministère chargé du Numérique", "published": "2025-01-31", "language": "fr",
                 "url": "https://www.numerique.gouv.example/presse/communiques/lancement-inesia"},
        "article": ["création de l'Institut national pour l'évaluation", "Laboratoire national de métrologie et d'essais",
                    "piloté par le Secrétariat général", "homologues britannique, américain, japonais et canadien"],
        "navigation": ["Le ministère", "Nous contacter", "Espace presse", "Rechercher", "Pied de page", "République"],
        "consent": ["Tout accepter", "Tout refuser", "Personnaliser", "améliorer votre expérience"],
        "related": ["Voir aussi", "Prime de Noël", "Déclaration de revenus", "Chèque énergie", "fioul"],
        "subscription": ["lettre d'information", "Recevez chaque mois", "appels à projets", "adresse électronique"],
        "footer": ["legifrance", "service-public.fr", "Plan du site", "partiellement conforme", "licence ouverte"],
        "other": ["Partager la page", "Copier le lien"],
    },
}
CHROME_KINDS = ("navigation", "consent", "related", "subscription", "footer", "other")


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def chrome(name: str) -> list[str]:
    return [s for kind in CHROME_KINDS for s in LAYOUTS[name][kind]]


@pytest.fixture(scope="module")
def prepared() -> dict[str, ingest.Prepared]:
    return {name: ingest.prepare(fixture(name), name, patterns=PATTERNS) for name in LAYOUTS}


# ---- extraction on each layout -----------------------------------------------------------------


@pytest.mark.parametrize("name", LAYOUTS)
def test_layout_metadata_comes_from_the_page(prepared, name):
    doc = prepared[name].document
    assert {k: getattr(doc, k) for k in LAYOUTS[name]["meta"]} == LAYOUTS[name]["meta"]
    assert prepared[name].kind == "html" and prepared[name].notes == []


@pytest.mark.parametrize("name", LAYOUTS)
def test_layout_keeps_the_article_and_drops_every_kind_of_chrome(prepared, name):
    text = prepared[name].document.text
    for sentence in LAYOUTS[name]["article"]:
        assert sentence in text, sentence
    leaked = [s for s in chrome(name) if s.lower() in text.lower()]
    assert leaked == [], f"boilerplate left in {name}: {leaked}"
    visible = page_text(name).lower()
    for kind in ("navigation", "consent", "related", "subscription", "footer"):  # each kind was really on the page
        assert all(s.lower() in visible for s in LAYOUTS[name][kind]), kind


def page_text(name: str) -> str:
    """All the text a reader of the page could see."""
    import re

    import lxml.html

    tree = lxml.html.document_fromstring(fixture(name).decode())
    for el in tree.xpath("//script|//style|//head"):
        el.getparent().remove(el)
    return re.sub(r"\s+", " ", tree.text_content())


@pytest.mark.parametrize("name", LAYOUTS)
def test_extracted_html_is_marked_so_line_patterns_leave_it_alone(prepared, name):
    md = prepared[name].markdown
    assert md.startswith("---\n") and "\nboilerplate: extracted\n" in md
    assert f"original: originals/{prepared[name].doc_id}.html" in md
    assert prepared[name].original == fixture(name)
    assert prepared[name].removed  # what was cut is reported


def test_a_paragraph_that_merely_mentions_a_newsletter_survives_in_html():
    # The loader's line pattern for "newsletter" lines would delete this whole paragraph in a text file.
    para = "The ministry said its newsletter on artificial intelligence reached 40,000 readers, twice the figure of last year."
    page = f"""<html lang="en"><head><title>T</title><meta property="og:site_name" content="Gazette"></head>
    <body><article><h1>Readers</h1><p>{para}</p><p>Officials welcomed the growth of the audience in a statement on Monday.</p></article></body></html>"""
    p = ingest.prepare(page.encode(), "page.html", patterns=PATTERNS)
    assert para in p.document.text
    as_text = ingest.prepare(f"Readers\n{para}\nOfficials welcomed the growth.\n".encode(), "page.txt",
                             ingest.Overrides(source="Gazette"), patterns=PATTERNS)
    assert para not in as_text.document.text  # plain text keeps today's configurable patterns


def test_a_page_without_metadata_gets_nothing_invented():
    page = b"""<html><body><div><h1>Un titre visible</h1><p>Le texte de l'article parle du sommet de Paris et de ses invites, sans aucune
    metadonnee dans la page: ni date, ni editeur, ni adresse canonique.</p><p>Un second paragraphe du meme article.</p></div></body></html>"""
    with pytest.raises(IngestError, match="needs a source") as info:
        ingest.prepare(page, "nu.html", patterns=PATTERNS)
    assert info.value.reason == "invalid"
    p = ingest.prepare(page, "nu.html", ingest.Overrides(source="Rédaction"), patterns=PATTERNS)
    doc = p.document
    assert (doc.title, doc.source, doc.published, doc.url) == ("Un titre visible", "Rédaction", None, None)
    assert doc.language == "fr" and p.notes == ["language not stated, detected as 'fr'"]
    assert "language: detected" in p.markdown


def test_metadata_precedence_and_cleanup():
    page = b"""<html lang="en-US"><head><title>Headline here | Example Times</title>
    <meta property="og:site_name" content="Example Times"><meta property="og:url" content="https://ex.example/a?utm_source=x&id=3#top">
    <meta name="date" content="Tue, 11 Feb 2025 10:00:00 +0100"></head>
    <body><p>Some words of text that are long enough to be an article body for the extractor to keep it.</p>
    <p>Another paragraph of the same article with more words in it.</p></body></html>"""
    doc = ingest.prepare(page, "a.html", patterns=PATTERNS).document
    assert doc.title == "Headline here"  # the site name after the separator is the site's, not the title's
    assert doc.source == "Example Times" and doc.language == "en" and doc.published == "2025-02-11"
    assert doc.url == "https://ex.example/a?id=3"  # tracking parameters and fragment dropped


def test_overrides_win_and_are_checked():
    o = ingest.Overrides(title="Mon titre", source="Ma source", published="2025-02-10", url="https://x.example/y", language="fr")
    doc = ingest.prepare(fixture("en-wire.html"), "en-wire.html", o, patterns=PATTERNS).document
    assert (doc.title, doc.source, doc.published, doc.url, doc.language) == ("Mon titre", "Ma source", "2025-02-10", "https://x.example/y", "fr")
    for bad, match in [(ingest.Overrides(published="hier"), "published"), (ingest.Overrides(url="javascript:alert(1)"), "url"),
                       (ingest.Overrides(language="de"), "language"), (ingest.Overrides(doc_id="../x"), "not a valid document id")]:
        with pytest.raises(InvalidInputError, match=match):
            ingest.prepare(fixture("en-wire.html"), "en-wire.html", bad, patterns=PATTERNS)


def test_a_page_in_another_language_is_refused_unless_overridden():
    page = b"""<html lang="de"><head><title>Titel</title><meta property="og:site_name" content="Zeitung"></head><body>
    <p>Der Gipfel in Paris brachte Staats- und Regierungschefs aus vielen Laendern zusammen.</p><p>Noch ein Absatz.</p></body></html>"""
    with pytest.raises(IngestError, match="language 'de'") as info:
        ingest.prepare(page, "de.html", patterns=PATTERNS)
    assert info.value.reason == "unsupported"


def test_hostile_markup_in_metadata_is_kept_as_plain_text():
    title = '<img src=x onerror=alert(1)> "Sommet" & <b>IA</b>'
    page = f"""<html lang="fr"><head><title>{title.replace('&', '&amp;').replace('<', '&lt;')}</title>
    <meta property="og:site_name" content="&lt;script&gt;alert(2)&lt;/script&gt;"></head><body>
    <p>Le sommet de Paris a réuni des chercheurs et des dirigeants pendant deux jours au Grand Palais.</p>
    <p>&lt;script&gt;alert(3)&lt;/script&gt; est écrit tel quel dans ce paragraphe de l'article.</p></body></html>"""
    p = ingest.prepare(page.encode(), "x.html", patterns=PATTERNS)
    assert p.document.title == title and p.document.source == "<script>alert(2)</script>"
    assert "<script>alert(3)</script> est écrit tel quel" in p.document.text
    reparsed = load_front_matter(p.markdown)
    assert reparsed["title"] == title  # YAML quoting survives the round trip


def load_front_matter(md: str) -> dict:
    import yaml

    return yaml.safe_load(md.split("---\n")[1])


# ---- sniffing and refusals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, name, reason, fragment",
    [
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "photo.html", "unsupported", "PNG image"),
        (b"PK\x03\x04" + b"\x00" * 40, "article.txt", "unsupported", "ZIP archive"),
        (b"abc\x00def" * 10, "notes.txt", "unsupported", "NUL bytes"),
        (b"Just text", "page.docx", "unsupported", "'.docx'"),
        (b"<html><body><p>Hello there</p></body></html>", "fake.pdf", "unsupported", "not a PDF"),
        (b"plain words and nothing else", "page.html", "unsupported", "no HTML markup"),
        (b"   \n\n  ", "blank.txt", "empty", "is empty"),
        (b"Trop court.", "short.txt", "empty", "empty after extraction"),
        (b"<html><body><nav><a href='/'>Accueil</a> <a href='/a'>A</a></nav></body></html>", "menu.html", "empty", "no article text"),
        (b"%PDF-1.4 garbage that is not a pdf", "broken.pdf", "invalid", "not a readable PDF"),
    ],
)
def test_bad_files_are_refused_with_one_sentence(raw, name, reason, fragment):
    with pytest.raises(IngestError) as info:
        ingest.prepare(raw, name, ingest.Overrides(source="S", title="T"), patterns=PATTERNS)
    assert info.value.reason == reason and fragment in str(info.value) and "\n" not in str(info.value)


def test_oversized_file_is_refused_before_anything_else():
    with pytest.raises(IngestError, match="over the 2,000-byte limit") as info:
        ingest.prepare(b"x" * 2001, "big.txt", patterns=PATTERNS, max_bytes=2000)
    assert info.value.reason == "too_large"


def test_content_decides_the_type():
    assert ingest.detect_kind(fixture("fr-news.html"), "saved-page.txt") == "html"  # a whole page saved as .txt
    assert ingest.detect_kind(fixture("fr-news.html"), None) == "html"
    assert ingest.detect_kind(make_pdf([["Texte"]]), "-") == "pdf"
    assert ingest.detect_kind(b"---\ntitle: T\nsource: S\n---\nTexte.", None) == "markdown"
    assert ingest.detect_kind("Texte accentué".encode("utf-16"), "a.txt") == "text"
    assert ingest.detect_kind(b"<p>fragment</p>", "a.htm") == "html"
    assert ingest.detect_kind(b"Just text", "README") == "text" and ingest.detect_kind(fixture("en-wire.html"), "blob") == "html"


def test_text_encodings_and_hard_wrapped_lines():
    body = ("Le sommet aura lieu au Grand Palais\n\n"
            "Le sommet de Paris réunira des chefs d'État et des dirigeants d'entreprises\n"
            "du monde entier au Grand Palais les 10 et 11 février, a indiqué\n"
            "l'Élysée dans un communiqué publié lundi.\n\nUn second paragraphe court.\n")
    for raw in (body.encode("utf-8"), body.encode("cp1252"), body.encode("utf-16")):
        p = ingest.prepare(raw, "depeche.txt", ingest.Overrides(source="Agence"), patterns=PATTERNS)
        assert "entreprises du monde entier au Grand Palais les 10 et 11 février, a indiqué l'Élysée" in p.document.text
        assert p.document.title == "Le sommet aura lieu au Grand Palais"  # the first line, as text files put it
    with pytest.raises(IngestError, match="no title"):  # a first line that is a whole paragraph is not a title
        ingest.prepare(body.split("\n\n", 1)[1].encode(), "depeche.txt", ingest.Overrides(source="Agence"), patterns=PATTERNS)


def test_text_file_keeps_the_configured_patterns():
    raw = "Le titre\nLa fondation sera dotée de 2,5 milliards d'euros, a annoncé le président.\nBienvenue sur Exemple\nJe crée mon compte\n"
    doc = ingest.prepare(raw.encode(), "a.txt", ingest.Overrides(source="Exemple"), patterns=PATTERNS).document
    assert "2,5 milliards" in doc.text and "Bienvenue" not in doc.text and "compte" not in doc.text


def test_markdown_with_front_matter_is_stored_as_it_is():
    raw = "---\ntitle: Titre\nsource: Source\nlanguage: fr\n---\nLe texte de l'article, avec assez de mots pour compter.\n".encode()
    p = ingest.prepare(raw, "mon-article.md", patterns=PATTERNS)
    assert (p.doc_id, p.kind, p.markdown.encode(), p.original) == ("mon-article", "markdown", raw, None)
    with pytest.raises(IngestError, match="source"):
        ingest.prepare(b"---\ntitle: Sans source\n---\nDu texte, assez de mots pour compter ici.\n", "x.md", patterns=PATTERNS)


def test_ids_have_no_path_tricks():
    for bad in ["../x", "a/b", "a\\b", ".hidden", "x.md", "UPPER", "é", "", "a" * 81, "-a", "a-", "a\x00b", "a b"]:
        with pytest.raises(InvalidInputError):
            ingest.check_id(bad)
    assert ingest.check_id("a") == "a" and ingest.check_id("sommet-2025") == "sommet-2025"
    assert ingest.slug("Été 2025 : l'IA à Paris / Londres") == "ete-2025-l-ia-a-paris-londres"
    p = ingest.prepare(fixture("gov-release.html"), "../../etc/passwd.html", patterns=PATTERNS)
    assert p.doc_id == "passwd" and p.original_name == "originals/passwd.html"


# ---- PDF ---------------------------------------------------------------------------------------

HEADER = "Dossier de presse – Sommet pour l’action sur l’IA"
PRESS_KIT = [
    [HEADER, "Le sommet réunira à Paris des chefs d’État, des dirigeants d’entreprises", "et des chercheurs les 10 et 11 février 2025. Les débats porteront sur l’intelli-",
     "gence artificielle au service de l’intérêt général.", "", "Page 1 / 3"],
    [HEADER, "Les tables rondes se tiendront au Grand Palais, où une centaine de délégations", "sont attendues le 11 février.", "Page 2 / 3"],
    [HEADER, "La fondation Current AI disposera d’une dotation initiale de 400 millions de", "dollars.", "Page 3 / 3"],
]


def test_pdf_text_without_running_headers_and_page_numbers():
    raw = make_pdf(PRESS_KIT, info={"Title": "Microsoft Word - DP_v3.docx", "CreationDate": "D:20250203101500+01'00'"}, lang="fr-FR")
    p = ingest.prepare(raw, "dossier.pdf", ingest.Overrides(source="Élysée", title="Dossier de presse du sommet"), patterns=PATTERNS)
    text = p.document.text
    assert "dirigeants d’entreprises et des chercheurs les 10 et 11 février 2025" in text  # lines joined
    assert "l’intelligence artificielle au service" in text  # hyphenation undone
    assert "dotation initiale de 400 millions de dollars." in text
    assert HEADER not in text and "Page 2" not in text
    assert p.document.language == "fr" and p.document.published is None  # the file's creation date is not a publication date
    assert "pdf_created: '2025-02-03'" in p.markdown and p.original == raw


def test_pdf_title_from_metadata_or_first_line():
    named = make_pdf([["Premier paragraphe assez long pour un article de presse sur le sommet."]], info={"Title": "Déclaration de Paris"})
    assert ingest.prepare(named, "d.pdf", ingest.Overrides(source="S"), patterns=PATTERNS).document.title == "Déclaration de Paris"
    placeholder = make_pdf([["Le titre imprimé", "Premier paragraphe assez long pour un article de presse sur le sommet."]],
                           info={"Title": "untitled"})
    assert ingest.prepare(placeholder, "d.pdf", ingest.Overrides(source="S"), patterns=PATTERNS).document.title == "Le titre imprimé"


def test_pdf_without_text_layer_is_an_empty_extraction():
    with pytest.raises(IngestError, match="no text layer") as info:
        ingest.prepare(make_pdf([[], []]), "scan.pdf", ingest.Overrides(source="S", title="T"), patterns=PATTERNS)
    assert info.value.reason == "empty"


def test_encrypted_pdf_is_refused():
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(io.BytesIO(make_pdf(PRESS_KIT))).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(IngestError, match="password-protected"):
        ingest.prepare(buf.getvalue(), "locked.pdf", ingest.Overrides(source="S", title="T"), patterns=PATTERNS)


# ---- the documents folder: loader, staleness, add and delete round trips ------------------------


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Assistant, FakeEmbedder]:
    from assistant import index as faiss_index

    from .milvus_fakes import fake_annotate

    monkeypatch.setattr(faiss_index, "annotate", fake_annotate)  # invented entities, no spaCy model
    write_corpus(tmp_path / "docs")
    embedder = FakeEmbedder()
    assistant = Assistant(Settings(documents_dir=tmp_path / "docs", index_dir=tmp_path / "index", min_confidence=0.0), embedder=embedder)
    assistant.load(rebuild="any")
    return assistant, embedder


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_add_stores_md_and_original_and_answers_at_once(corpus):
    assistant, embedder = corpus
    docs = assistant.settings.documents_dir
    before_docs, before_chunks = len(assistant.index.documents), len(assistant.index.chunks)
    embedder.texts_embedded = 0
    result = ingest.add_documents(assistant, [ingest.Input(fixture("en-wire.html"), "en-wire.html")])
    added = result["added"][0]
    assert added["doc_id"] == "en-wire" and added["format"] == "html" and added["original"] == "originals/en-wire.html"
    assert (docs / "en-wire.md").is_file() and (docs / "originals" / "en-wire.html").read_bytes() == fixture("en-wire.html")
    assert len(assistant.index.documents) == before_docs + 1
    # Only the new document was embedded: its passages, its sentences and the words new to the corpus.
    new = [c for c in assistant.index.chunks if c.doc_id == "en-wire"]
    new_sentences = [s for s in assistant.index.sentences if s.doc_id == "en-wire"]
    assert len(assistant.index.chunks) == before_chunks + len(new) == before_chunks + added["chunks"]
    assert result["build"]["reused_documents"] == before_docs
    assert embedder.texts_embedded == result["build"]["embedded_texts"]
    assert len(new) + len(new_sentences) < embedder.texts_embedded < len(new) + len(new_sentences) + 200  # + new words only
    answer = assistant.ask("How many countries backed the statement?", k=3)
    assert answer.citations[0].doc_id == "en-wire" and "58 countries" in answer.citations[0].passage
    assert not any("Casper Ruud" in assistant.index.documents[d]["text"] for d in assistant.index.documents)


def test_loader_and_staleness_check_ignore_the_originals(corpus):
    assistant, _ = corpus
    docs = assistant.settings.documents_dir
    ingest.add_documents(assistant, [ingest.Input(b"---\ntitle: T\nsource: S\n---\nLe texte de l'article sur le sommet de Paris.\n", "sans-original.md"),
                                     ingest.Input("Un titre\nUn texte brut en plusieurs mots sur le sommet.\n".encode(), "brut.txt", ingest.Overrides(source="S"))])
    assert [p.name for p in document_paths(docs)] == ["a.md", "b.md", "brut.md", "sans-original.md"]
    assert (docs / "originals" / "brut.txt").is_file() and not (docs / "originals" / "sans-original.md").exists()
    assert documents_changed(read_manifest(assistant.settings.index_dir), docs) is None
    (docs / "originals" / "brut.txt").write_text("changed by hand", encoding="utf-8")
    (docs / "originals" / "extra.md").write_text("---\ntitle: x\n---\nnot a document", encoding="utf-8")
    assert documents_changed(read_manifest(assistant.settings.index_dir), docs) is None
    assert len(load_documents(docs, PATTERNS)[0]) == 4


def test_duplicates_are_refused_and_nothing_is_written(corpus):
    assistant, _ = corpus
    docs = assistant.settings.documents_dir
    ingest.add_documents(assistant, [ingest.Input(fixture("fr-news.html"), "fr-news.html")])
    before, build = files(docs), assistant.index.build_id
    cases = [
        (ingest.Input(fixture("fr-news.html"), "fr-news.html"), "already exists"),  # same id
        (ingest.Input(fixture("fr-news.html"), "autre-nom.html"), "same URL"),  # same canonical URL
        (ingest.Input(fixture("fr-news.html").replace(b'rel="canonical"', b'rel="x"').replace(b"og:url", b"og:x")
                      .replace(b"mainEntityOfPage", b"x"), "copie.html"), "same text"),
        (ingest.Input(ingest.prepare(fixture("fr-news.html"), "fr-news.html").markdown.encode(), "copie.md"), "same URL"),
        (ingest.Input(b"---\ntitle: T\nsource: S\n---\nTexte du document a ici.\n", "a.md"), "already exists"),
    ]
    for item, fragment in cases:
        with pytest.raises(IngestError, match=fragment) as info:
            ingest.add_documents(assistant, [item])
        assert info.value.reason == "duplicate"
    # the same file twice in one batch
    with pytest.raises(IngestError, match="already exists"):
        ingest.add_documents(assistant, [ingest.Input(fixture("gov-release.html"), "g.html"), ingest.Input(fixture("gov-release.html"), "g.html")])
    assert files(docs) == before and assistant.index.build_id == build


def test_a_failed_build_rolls_back_both_files(corpus, monkeypatch):
    assistant, _ = corpus
    docs = assistant.settings.documents_dir
    before, build = files(docs), assistant.index.build_id

    def boom(**kw):
        raise DocumentError("x", "simulated failure while building")

    monkeypatch.setattr(assistant, "build", boom)
    with pytest.raises(DocumentError, match="simulated"):
        ingest.add_documents(assistant, [ingest.Input(fixture("gov-release.html"), "gov.html")])
    assert files(docs) == before and assistant.index.build_id == build
    assert not any(name.startswith(".") or "tmp" in name for name in files(docs))


def test_batch_is_all_or_nothing_unless_skip_invalid(corpus):
    assistant, _ = corpus
    docs = assistant.settings.documents_dir
    good, bad = ingest.Input(fixture("gov-release.html"), "gov.html"), ingest.Input(b"\x89PNG\r\n\x1a\n\x00\x00", "x.html")
    with pytest.raises(IngestError, match="PNG"):
        ingest.add_documents(assistant, [good, bad])
    assert not (docs / "gov.md").exists()
    result = ingest.add_documents(assistant, [good, bad], skip_invalid=True)
    assert [d["doc_id"] for d in result["added"]] == ["gov"] and "PNG" in result["skipped"][0]


def test_delete_round_trip_and_refusals(corpus):
    assistant, _ = corpus
    docs = assistant.settings.documents_dir
    before = files(docs)
    ingest.add_documents(assistant, [ingest.Input(fixture("en-wire.html"), "en-wire.html")])
    result = ingest.delete_document(assistant, "en-wire")
    assert result["files"] == ["en-wire.md", "originals/en-wire.html"]
    assert "en-wire" not in assistant.index.documents
    assert [f for f in files(docs) if f != "originals"] == before
    with pytest.raises(IngestError, match="no such document") as info:
        ingest.delete_document(assistant, "en-wire")
    assert info.value.reason == "not_found"
    with pytest.raises(InvalidInputError):
        ingest.delete_document(assistant, "../a")
    ingest.delete_document(assistant, "a")
    with pytest.raises(IngestError, match="only document"):
        ingest.delete_document(assistant, "b")
    assert (docs / "b.md").is_file() and list(assistant.index.documents) == ["b"]


def test_a_failed_build_on_delete_restores_the_files(corpus, monkeypatch):
    assistant, _ = corpus
    docs = assistant.settings.documents_dir
    ingest.add_documents(assistant, [ingest.Input(fixture("en-wire.html"), "en-wire.html")])
    before, build = files(docs), assistant.index.build_id
    monkeypatch.setattr(assistant, "build", lambda **kw: (_ for _ in ()).throw(DocumentError("x", "simulated")))
    with pytest.raises(DocumentError):
        ingest.delete_document(assistant, "en-wire")
    assert files(docs) == before and assistant.index.build_id == build


def test_a_bad_document_already_in_the_folder_fails_the_add_cleanly(corpus):
    assistant, _ = corpus
    docs = assistant.settings.documents_dir
    (docs / "broken.md").write_text("no front matter", encoding="utf-8")
    before = files(docs)
    with pytest.raises(DocumentError, match="broken.md"):
        ingest.add_documents(assistant, [ingest.Input(fixture("en-wire.html"), "en-wire.html")])
    assert files(docs) == before


def test_expand_paths_reads_a_folder(tmp_path):
    for name in ("b.html", "a.pdf", "c.txt", "d.md", "e.png", ".hidden.html"):
        (tmp_path / name).write_bytes(b"x")
    found, skipped = ingest.expand_paths([str(tmp_path), "-"])
    assert [Path(f).name for f in found[:-1]] == ["a.pdf", "b.html", "c.txt", "d.md"] and found[-1] == "-"
    assert [Path(f).name for f in skipped] == ["e.png"]


def test_read_input_refuses_oversized_files_before_reading(tmp_path):
    big = tmp_path / "big.html"
    big.write_bytes(b"x" * 5000)
    with pytest.raises(IngestError, match="over the 4,000-byte limit"):
        ingest.read_input(str(big), 4000)
    item = ingest.read_input("-", 10, stdin=io.BytesIO(b"0123456789ABC"))
    with pytest.raises(IngestError, match="limit"):
        ingest.prepare(item.raw, item.name, max_bytes=10)
    with pytest.raises(InvalidInputError, match="no such file"):
        ingest.read_input(str(tmp_path / "nope.html"), 10)


def test_dates_urls_and_languages_are_normalised_or_dropped():
    assert ingest.normalize_date("2025-02-09T07:45:00+01:00") == "2025-02-09"
    assert ingest.normalize_date("D:20250203101500+01'00'") == "2025-02-03"
    assert ingest.normalize_date("Tue, 11 Feb 2025 10:00:00 GMT") == "2025-02-11"
    assert ingest.normalize_date("2025-02-30") is None and ingest.normalize_date("février") is None
    assert ingest.normalize_url("/relative") is None and ingest.normalize_url("ftp://x.example/a") is None
    assert ingest.normalize_url("/a/b", base="https://x.example/c") == "https://x.example/a/b"
    assert ingest.normalize_language("fr_FR") == "fr" and ingest.normalize_language({"name": "English"}) == "en"
    assert json.dumps(ingest.strip_site_name("Le Monde - Un titre - avec tiret", "Le Monde")) == '"Un titre - avec tiret"'


# ---- replacing and re-extracting ---------------------------------------------------------------


def test_replace_swaps_in_a_corrected_version(corpus):
    assistant, _ = corpus
    docs = assistant.settings.documents_dir
    ingest.add_documents(assistant, [ingest.Input(fixture("en-wire.html"), "en-wire.html")])
    corrected = fixture("en-wire.html").replace(b"backed by 58 countries", b"backed by 61 countries")
    with pytest.raises(IngestError, match="already exists"):
        ingest.add_documents(assistant, [ingest.Input(corrected, "en-wire.html")])
    result = ingest.add_documents(assistant, [ingest.Input(corrected, "en-wire.html")], replace=True)
    assert result["added"][0]["doc_id"] == "en-wire"
    assert "61 countries" in assistant.index.documents["en-wire"]["text"]
    assert "58 countries" not in assistant.index.documents["en-wire"]["text"]
    assert (docs / "originals" / "en-wire.html").read_bytes() == corrected
    assert not any(name.startswith(".") for name in files(docs))


def test_a_failed_replace_restores_the_previous_version(corpus, monkeypatch):
    assistant, _ = corpus
    docs = assistant.settings.documents_dir
    ingest.add_documents(assistant, [ingest.Input(fixture("en-wire.html"), "en-wire.html")])
    before = {f: (docs / f).read_bytes() for f in files(docs) if (docs / f).is_file()}
    monkeypatch.setattr(assistant, "build", lambda **kw: (_ for _ in ()).throw(DocumentError("x", "simulated")))
    with pytest.raises(DocumentError):
        ingest.add_documents(assistant, [ingest.Input(fixture("en-wire.html").replace(b"58", b"61"), "en-wire.html")], replace=True)
    assert {f: (docs / f).read_bytes() for f in files(docs) if (docs / f).is_file()} == before


def test_reextract_redoes_the_extraction_from_the_original(corpus):
    assistant, _ = corpus
    docs = assistant.settings.documents_dir
    pdf = make_pdf(PRESS_KIT, lang="fr")
    ingest.add_documents(assistant, [ingest.Input(fixture("gov-release.html"), "gov.html"),
                                     ingest.Input(pdf, "kit.pdf", ingest.Overrides(source="Élysée", title="Dossier de presse"))])
    assert ingest.reextract(assistant)["changed"] == []  # nothing changed: nothing rewritten, no rebuild
    good = (docs / "gov.md").read_text(encoding="utf-8")
    (docs / "gov.md").write_text(good.replace("Inria", "Inria\nVoir aussi Prime de Noël 2024"), encoding="utf-8")  # an older, worse extraction
    (docs / "kit.md").write_text((docs / "kit.md").read_text(encoding="utf-8") + "Page 9 / 9\n", encoding="utf-8")
    assistant.build()
    result = ingest.reextract(assistant)
    assert sorted(result["changed"]) == ["gov", "kit"] and result["skipped"] == ["a: written by hand (no original kept); nothing to redo",
                                                                                "b: written by hand (no original kept); nothing to redo"]
    assert (docs / "gov.md").read_text(encoding="utf-8") == good  # same text, same metadata, same date added
    kit = assistant.index.documents["kit"]
    assert (kit["source"], kit["title"]) == ("Élysée", "Dossier de presse")  # what was given at add time is re-applied
    assert "Page 9" not in kit["text"] and "Prime de Noël" not in assistant.index.documents["gov"]["text"]
    with pytest.raises(IngestError, match="no such document"):
        ingest.reextract(assistant, ["nope"])


# ---- a layout the rules were not written for: a site's template is learnt from its other pages ---


def test_an_unseen_layout_and_its_site_template(corpus):
    """Two pages of one regional site whose markup names nothing in English (id="bas",
    class="bloc-abo", "rgpd-popup"), with inline "Lire aussi" links, comments and a sidebar.
    The first page alone loses all of it but the paywall prompt, which nothing in its markup
    tells apart from a paragraph; the second page of the same site drops it as part of the
    site's template, and `reextract` then drops it from the first page too."""
    assistant, _ = corpus
    first = fixture("fr-regional-1.html")
    second = fixture("fr-regional-2.html")
    chrome_lines = ["Lire aussi", "camion se renverse", "Stade rennais", "commentaire", "Bravo à elles", "Les plus partagés",
                    "Loto", "10 rue du Port", "Tous droits réservés", "traceurs", "J'accepte", "Faits divers"]
    ingest.add_documents(assistant, [ingest.Input(first, "regional-1.html")])
    one = assistant.index.documents["regional-1"]
    assert (one["title"], one["source"], one["published"]) == (
        "Intelligence artificielle : une start-up rennaise au sommet de Paris", "Ouest Régions", "2025-02-08")
    assert "40 millions de mots" in one["text"] and "La jeune pousse Kerlab" in one["text"]
    assert [s for s in chrome_lines if s in one["text"]] == []
    assert "articles gratuits" in one["text"]  # the one block only other pages of the site reveal
    ingest.add_documents(assistant, [ingest.Input(second, "regional-2.html")])
    two = assistant.index.documents["regional-2"]
    assert "12 000 photographies" in two["text"] and "4 500 euros" in two["text"]
    assert [s for s in chrome_lines + ["articles gratuits", "Ouessant"] if s in two["text"]] == []
    assert ingest.reextract(assistant, ["regional-1"])["changed"] == ["regional-1"]
    assert "articles gratuits" not in assistant.index.documents["regional-1"]["text"]
    assert "40 millions de mots" in assistant.index.documents["regional-1"]["text"]


def test_a_sentence_shared_by_two_articles_of_a_site_is_kept():
    """The site template is made of short blocks with a link or outside paragraphs, never prose."""
    shared = "La déclaration finale du sommet doit être présentée mardi 11 février au Grand Palais."
    page = lambda body: f"""<html lang="fr"><head><title>T</title><meta property="og:site_name" content="S"></head><body>
        <article><h1>Titre</h1><p>{body} Un paragraphe propre à cet article, avec assez de mots pour être de la prose.</p>
        <p>{shared}</p></article></body></html>""".encode()  # noqa: E731
    peer = page("Le premier article parle des invités du sommet et de leur arrivée à Paris.")
    p = ingest.prepare(page("Le second article parle du programme des tables rondes."), "b.html", peers=lambda host, source: [peer])
    assert shared in p.document.text


def test_short_paragraphs_beside_the_prose_are_kept():
    page = """<html lang="fr"><head><title>T</title><meta property="og:site_name" content="S"></head><body>
    <div class="menu"><a href="/">Accueil</a> <a href="/a">Rubrique</a></div>
    <div><p>Un seul long paragraphe de prose suffit ici pour reconnaitre le conteneur de l'article et ses voisins directs.</p>
    <p>Une phrase courte.</p><p>Une autre phrase courte, datée du 10 février.</p></div></body></html>"""
    text = ingest.prepare(page.encode(), "p.html", patterns=PATTERNS).document.text
    assert "Une phrase courte." in text and "datée du 10 février" in text and "Rubrique" not in text


_TAGS = ["p", "div", "a", "nav", "footer", "header", "h1", "ul", "li", "script", "form", "button", "article", "aside", "table", "td", "span"]
_ATTRS = ["", ' class="paywall"', ' role="dialog"', " hidden", ' class="related"', ' href="/x"', ' lang="fr"']


def test_any_input_is_a_document_or_one_refusal():
    """Random markup, bytes and truncated PDFs: prepare() returns a document or raises one of its
    two named errors (an API upload must never reach the 500 handler)."""
    from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

    leaf = st.sampled_from(["Le sommet de Paris réunit des chefs d'État à Paris. ", "<!-- c -->", "&amp;", "&#0;", "\x00", "é",
                            "<![CDATA[x]]>", "mots " * 30, "<?pi x?>"])
    html = st.recursive(leaf, lambda inner: st.tuples(st.sampled_from(_TAGS), st.sampled_from(_ATTRS), st.lists(inner, max_size=4), st.booleans())
                        .map(lambda t: f"<{t[0]}{t[1]}>" + "".join(t[2]) + (f"</{t[0]}>" if t[3] else "")), max_leaves=25)
    pdf = st.tuples(st.lists(st.lists(st.sampled_from(["Texte du sommet", "", "Page 1", "x" * 120]), max_size=5), max_size=3),
                    st.floats(0, 1)).map(lambda t: make_pdf(t[0])[: max(1, int(len(make_pdf(t[0])) * (0.5 + t[1] / 2)))])
    raw_input = st.one_of(html.map(lambda h: ("<html>" + h + "</html>").encode("utf-8", "surrogatepass")), st.binary(max_size=400), pdf)

    @given(raw=raw_input, name=st.sampled_from(["a.html", "b.txt", "c.pdf", None, "-", "d.md"]))
    @hsettings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def run(raw: bytes, name: str | None) -> None:
        try:
            p = ingest.prepare(raw, name, ingest.Overrides(source="S"), patterns=PATTERNS)
        except (IngestError, InvalidInputError) as exc:
            assert "\n" not in str(exc)
        else:
            assert p.document.text.strip() and p.markdown.startswith("---\n")

    run()

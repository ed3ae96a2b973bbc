"""Add articles the way publishers have them: HTML pages, PDF files, plain text or Markdown.

Pure library code, shared by ``summit add`` and ``POST /api/documents``:

- :func:`prepare` turns one file's bytes into the Markdown document the loader reads (front
  matter + text) without writing anything. The type is sniffed from the content; the file name
  only has to agree with it.
  - HTML: the page's chrome is removed structurally (navigation, banners, dialogs, forms and the
    blocks around them, link lists, hidden and repeated blocks, elements whose class or id names
    a chrome concept), then trafilatura extracts the main text. Title, publisher, date, canonical
    URL and language come from the page's own JSON-LD and ``<meta>`` tags, never guessed; the
    document is marked ``boilerplate: extracted`` so the loader's line patterns leave it alone.
  - PDF: pypdf's text, with running headers, footers and page numbers dropped and the lines of
    each paragraph joined again.
  - Plain text: hard-wrapped paragraphs joined; the loader's configurable patterns clean it, as
    for Markdown.
  - Markdown with front matter is stored as it is.
- :func:`add_documents` writes ``documents/<id>.md`` and the original as
  ``documents/originals/<id>.<ext>`` (so the extraction can be redone), rebuilds the index (only
  the new documents are embedded) and removes both files again if anything fails.
- :func:`delete_document` removes a document and its original, rebuilds, and restores them if the
  build fails.

Nothing here imports a web framework.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import email.utils
import fcntl
import hashlib
import io
import json
import logging
import os
import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import yaml

from . import text as textmod
from .documents import (
    DOCUMENT_SUFFIXES,
    EXTRACTED,
    MAX_DOCUMENT_BYTES,
    Document,
    doc_id_for,
    load_documents,
    parse_document,
)
from .errors import DocumentError, IngestError, InvalidInputError

log = logging.getLogger("summit.ingest")

ORIGINALS_DIR = "originals"
LANGUAGES = ("fr", "en")
MIN_WORDS = 5  # fewer words than this after extraction is an empty extraction
MAX_PDF_PAGES = 2000
MAX_ID_CHARS = 80
ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,%d}[a-z0-9])?" % (MAX_ID_CHARS - 2))

# Declared types, from the file name.
SUFFIX_KINDS = {
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".pdf": "pdf",
    ".txt": "text", ".text": "text",
    ".md": "markdown", ".markdown": "markdown",
}
KIND_SUFFIX = {"html": ".html", "pdf": ".pdf", "text": ".txt", "markdown": ".md"}
SUPPORTED = ".html, .htm, .pdf, .txt, .md"

# Content that is certainly not an article, by its first bytes.
_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"), (b"RIFF", "a RIFF media file"), (b"PK\x03\x04", "a ZIP archive (or a .docx/.odt/.epub file)"),
    (b"\x1f\x8b", "a gzip archive"), (b"BZh", "a bzip2 archive"), (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file (.doc/.xls)"),
    (b"\x7fELF", "a program"), (b"MZ", "a Windows program"), (b"{\\rtf", "an RTF document"), (b"%!PS", "a PostScript file"),
    (b"ID3", "an MP3 file"), (b"OggS", "an Ogg media file"), (b"wOFF", "a web font"), (b"\x00\x00\x01\x00", "an icon"),
    (b"SQLite format 3", "an SQLite database"),
]


class Builder(Protocol):
    """What add/delete need from the assistant: its settings and a build that installs the result."""

    settings: Any

    def build(self, *, force: bool = False, skip_invalid: bool = False, progress: Any = None) -> dict: ...


@dataclass
class Overrides:
    """Metadata given by the person adding the file; each wins over what the file says."""

    doc_id: str | None = None
    title: str | None = None
    source: str | None = None
    published: str | None = None
    url: str | None = None
    language: str | None = None


@dataclass
class Prepared:
    """One file turned into a document, nothing written yet."""

    doc_id: str
    kind: str  # html | pdf | text | markdown
    name: str  # what the file was called, for messages
    markdown: str  # the whole .md file
    document: Document  # the .md parsed back by the loader: exactly what will be indexed
    original: bytes | None  # kept beside the .md; None when the .md is the original itself
    original_name: str | None  # e.g. "originals/<id>.html"
    sha256: str  # of the original bytes
    notes: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # blocks removed as page chrome (HTML)

    def metadata(self) -> dict:
        return {**self.document.metadata(), "format": self.kind, "original": self.original_name,
                "characters": len(self.document.text)}


# ---- small helpers ---------------------------------------------------------------------------


def check_id(doc_id: str, where: str = "--id") -> str:
    """A document id is lower-case ASCII letters, digits and '-', 1 to 80 characters: no path."""
    if not isinstance(doc_id, str) or not ID_PATTERN.fullmatch(doc_id):
        raise InvalidInputError(
            f"{where} {doc_id!r} is not a valid document id: use 1 to {MAX_ID_CHARS} lower-case letters, digits "
            f"and '-' (no '/', '.', spaces or accents), starting and ending with a letter or digit"
        )
    return doc_id


def slug(text: str, limit: int = 60) -> str:
    """An id from a title or file name: ASCII words joined by '-', cut at a word boundary."""
    s = doc_id_for(Path(re.sub(r"[/\\]", " ", str(text)) + ".x"))
    if len(s) > limit:
        s = s[:limit].rsplit("-", 1)[0] or s[:limit]
    return s.strip("-") or "document"


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u200c\u200d\u2060\ufeff\u00ad]")


def clean_chars(text: str) -> str:
    """NFC, tabs and odd spaces to plain spaces, control and invisible characters removed."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\t", " ").replace("\u2028", "\n").replace("\u2029", "\n")
    text = _CONTROL.sub("", text)
    return "\n".join(re.sub(r"[ \u00a0\u2000-\u200a\u3000]{2,}", " ", ln).strip() for ln in text.split("\n"))


def _one_line(value: object, limit: int = 500) -> str | None:
    if value is None:
        return None
    s = re.sub(r"\s+", " ", clean_chars(str(value))).strip()
    return s[:limit].strip() or None


def normalize_date(value: object) -> str | None:
    """ISO 8601, compact (20250211, PDF 'D:2025...') or RFC 2822 dates to YYYY-MM-DD; else None."""
    if value is None:
        return None
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.strftime("%Y-%m-%d")
    v = str(value).strip()
    if v.startswith("D:"):
        v = v[2:]
    m = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2})(?![\d])", v) or re.match(r"(\d{4})(\d{2})(\d{2})", v)
    if m:
        try:
            return _dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
        except ValueError:
            return None
    try:
        parsed = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.date().isoformat() if parsed else None


def normalize_language(value: object) -> str | None:
    """'fr-FR', 'fr_FR', 'French' -> 'fr'; None when empty."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("alternateName") or value.get("name")
    v = str(value).strip().lower().replace("_", "-")
    if not v:
        return None
    named = {"french": "fr", "français": "fr", "francais": "fr", "english": "en", "anglais": "en"}
    return named.get(v, v.split("-")[0][:8])


_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|xtor|at_medium|at_campaign)$", re.I)


def normalize_url(value: object, base: str | None = None) -> str | None:
    """An absolute http(s) URL without tracking parameters or fragment; None otherwise."""
    if not value or not isinstance(value, str):
        return None
    v = value.strip()
    if base and not urlsplit(v).scheme:
        v = urljoin(base, v)
    parts = urlsplit(v)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c.isspace() for c in v):
        return None
    query = urlencode([(k, val) for k, val in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)])
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


# ---- type sniffing -----------------------------------------------------------------------------


def _decode_text(raw: bytes, name: str) -> tuple[str, str]:
    """Bytes of a text file to str: UTF-8 (with or without BOM), UTF-16 with a BOM, else Windows-1252."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise IngestError(name, "starts like UTF-16 text but does not decode as UTF-16", "invalid") from None
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError as exc:
        raise IngestError(name, f"is not UTF-8 or Windows-1252 text (byte {exc.start}); re-save it as UTF-8", "invalid") from None


def _binary_kind(raw: bytes) -> str | None:
    """What a binary (non-text) file is, or None when it may be text."""
    for magic, what in _MAGIC:
        if raw.startswith(magic):
            return what
    head = raw[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None  # UTF-16 text has NUL bytes
    if b"\x00" in head:
        return "a binary file (it contains NUL bytes)"
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if head and controls / len(head) > 0.05:
        return "a binary file (it is mostly control bytes)"
    return None


_HTML_START = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S)
_HTML_TAG = re.compile(r"<(?:p|div|article|section|h[1-6]|span|a|br|title|meta|main|body|html|table|ul|li)\b[^>]*>", re.I)
_FRONT = re.compile(r"\A\ufeff?---[ \t]*\r?\n")


def sniff(raw: bytes) -> str:
    """'pdf', 'html', 'markdown' (with front matter), 'text', or 'binary'."""
    if b"%PDF-" in raw[:1024]:
        return "pdf"
    if _binary_kind(raw):
        return "binary"
    head = raw[:4096]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            head = raw[:8192].decode("utf-16", errors="ignore").encode("utf-8")
        except Exception:  # pragma: no cover - decode with errors="ignore" does not fail
            return "text"
    if _HTML_START.match(head.lstrip(b"\xef\xbb\xbf")):
        return "html"
    if _FRONT.match(head.decode("utf-8", errors="ignore")):
        return "markdown"
    return "text"


def detect_kind(raw: bytes, name: str | None) -> str:
    """The type to extract with, from the content; the file name, when there is one, must agree.

    A name with an unsupported extension is refused, a name without one declares nothing (an
    upload named "blob" or "-"); '.txt' holding a whole HTML page is read as HTML; '.html' holding
    a fragment of markup without <html> is still HTML."""
    shown = name or "the input"
    declared = None
    suffix = _suffix(name)
    if suffix:
        declared = SUFFIX_KINDS.get(suffix)
        if declared is None:
            raise IngestError(shown, f"has an unsupported type ('{suffix}'); supported: {SUPPORTED}", "unsupported")
    sniffed = sniff(raw)
    if sniffed == "binary":
        raise IngestError(shown, f"is {_binary_kind(raw)}, not an article; supported: {SUPPORTED}", "unsupported")
    if declared == "pdf" and sniffed != "pdf":
        raise IngestError(shown, "is named .pdf but is not a PDF (no %PDF header)", "unsupported")
    if declared is None or sniffed == "pdf":
        return sniffed
    if declared == "html":
        text = raw[:65536].decode("utf-8", errors="ignore")
        if sniffed != "html" and not _HTML_TAG.search(text):
            raise IngestError(shown, "is named .html but holds no HTML markup", "unsupported")
        return "html"
    if declared == "text" and sniffed == "html":
        return "html"
    if declared == "markdown":
        return "markdown"
    return "text" if sniffed == "markdown" else sniffed


def _suffix(name: str | None) -> str:
    """The lower-case extension of a file name ('' for none, '-' or a dot file)."""
    if not name or name == "-":
        return ""
    return Path(name).suffix.lower()


# ---- HTML: metadata ----------------------------------------------------------------------------

_ARTICLE_TYPES = ("NewsArticle", "ReportageNewsArticle", "AnalysisNewsArticle", "OpinionNewsArticle",
                  "BackgroundNewsArticle", "ReviewNewsArticle", "LiveBlogPosting", "Article", "BlogPosting",
                  "Report", "ScholarlyArticle", "TechArticle", "SocialMediaPosting")
_PAGE_TYPES = ("WebPage", "ItemPage", "AboutPage", "CollectionPage")
_DATE_META = ("article:published_time", "og:published_time", "og:article:published_time", "published_time",
              "datepublished", "date", "pubdate", "publishdate", "publish-date", "publish_date", "dc.date",
              "dc.date.issued", "dc.date.created", "dcterms.date", "dcterms.issued", "dcterms.created",
              "sailthru.date", "parsely-pub-date", "article.published", "cxenseparse:recs:publishtime")


def _types(node: dict) -> set[str]:
    t = node.get("@type")
    items = t if isinstance(t, list) else [t]
    return {str(x).rsplit("/", 1)[-1] for x in items if x}


def _json_ld_nodes(tree) -> list[dict]:
    nodes: list[dict] = []

    def walk(x: object, depth: int = 0) -> None:
        if depth > 6:
            return
        if isinstance(x, list):
            for item in x:
                walk(item, depth + 1)
        elif isinstance(x, dict):
            nodes.append(x)
            for key in ("@graph", "mainEntity", "itemListElement"):
                if key in x:
                    walk(x[key], depth + 1)

    for script in tree.xpath("//script[@type]"):
        if "ld+json" not in (script.get("type") or "").lower():
            continue
        body = (script.text or "").strip()
        body = re.sub(r"^\s*(?:<!\[CDATA\[|<!--)|(?:\]\]>|-->)\s*$", "", body)
        try:
            walk(json.loads(body))
        except (ValueError, RecursionError):
            continue
    return nodes


def _ld_text(value: object) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value")
    return _one_line(value) if isinstance(value, (str, int, float)) else None


def _ld_url(value: object) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("@id") or value.get("url")
    return value if isinstance(value, str) else None


def html_metadata(tree) -> dict[str, str | None]:
    """Title, source (publisher / site name), published date, canonical URL and language, from
    the page's JSON-LD first, then its OpenGraph and other <meta> tags, <link rel=canonical>,
    <html lang> and <title>. A field the page does not state is None."""
    nodes = _json_ld_nodes(tree)
    by_id = {n["@id"]: n for n in nodes if isinstance(n.get("@id"), str)}
    article = next((n for t in _ARTICLE_TYPES for n in nodes if t in _types(n)), None)
    page = next((n for t in _PAGE_TYPES for n in nodes if t in _types(n)), None)
    site = next((n for n in nodes if "WebSite" in _types(n)), None)
    main = article or page or {}

    meta: dict[str, str] = {}
    for m in tree.xpath("//meta"):
        key = (m.get("property") or m.get("name") or m.get("itemprop") or m.get("http-equiv") or "").strip().lower()
        content = m.get("content")
        if key and content and content.strip() and key not in meta:
            meta[key] = content.strip()

    publisher = main.get("publisher") if isinstance(main, dict) else None
    if isinstance(publisher, list):
        publisher = publisher[0] if publisher else None
    if isinstance(publisher, dict) and "name" not in publisher and isinstance(publisher.get("@id"), str):
        publisher = by_id.get(publisher["@id"], publisher)
    source = (_ld_text(publisher) or _one_line(meta.get("og:site_name")) or _one_line(meta.get("application-name"))
              or (_ld_text(site.get("name")) if site else None))

    title_tag = tree.xpath("//title")
    page_title = _one_line(title_tag[0].text_content()) if title_tag else None
    title = (_ld_text(main.get("headline")) or (_ld_text(main.get("name")) if main else None)
             or _one_line(meta.get("og:title")) or _one_line(meta.get("twitter:title")))
    if not title and page_title:
        title = strip_site_name(page_title, source)
    if not title:
        h1 = tree.xpath("//h1")
        title = _one_line(h1[0].text_content()) if h1 else None

    published = normalize_date(_ld_text(main.get("datePublished")) or _ld_text(main.get("dateCreated")))
    if not published:
        for key in _DATE_META:
            if key in meta and (published := normalize_date(meta[key])):
                break
    if not published:
        for t in tree.xpath("//time[@itemprop='datePublished' or @pubdate][@datetime]"):
            if published := normalize_date(t.get("datetime")):
                break

    og_url = normalize_url(meta.get("og:url"))
    canonical = None
    for link in tree.xpath("//link[@href]"):
        if "canonical" in (link.get("rel") or "").lower().split():
            canonical = normalize_url(link.get("href"), base=og_url)
            break
    url = canonical or og_url or normalize_url(_ld_url(main.get("url")) or _ld_url(main.get("mainEntityOfPage")))

    html_lang = tree.xpath("/html/@lang|/html/@xml:lang", namespaces={"xml": "http://www.w3.org/XML/1998/namespace"})
    language = (normalize_language(_ld_text(main.get("inLanguage")) or main.get("inLanguage"))
                or normalize_language(html_lang[0] if html_lang else None)
                or normalize_language(meta.get("og:locale")) or normalize_language(meta.get("content-language"))
                or normalize_language(meta.get("language")) or normalize_language(meta.get("dc.language")))
    return {"title": title, "source": source, "published": published, "url": url, "language": language}


_TITLE_SEPARATORS = re.compile(r"\s+[-|–—·:•»]{1,2}\s+")


def strip_site_name(title: str, source: str | None) -> str:
    """'Headline - Site Name' -> 'Headline' when the part cut off is the site's own name."""
    seps = list(_TITLE_SEPARATORS.finditer(title))
    if not source or not seps:
        return title
    same = lambda a: textmod.fold(a).strip() == textmod.fold(source).strip()  # noqa: E731
    if same(title[seps[-1].end():]):
        return title[: seps[-1].start()].strip() or title
    if same(title[: seps[0].start()]):
        return title[seps[0].end():].strip() or title
    return title


# ---- HTML: structural boilerplate removal ------------------------------------------------------

# Whole elements that are never article text.
_DROP_TAGS = ("script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas", "nav",
              "footer", "aside", "menu", "dialog", "form", "button", "input", "select", "textarea", "label",
              "video", "audio", "map")
_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "search", "menu", "menubar", "complementary",
                         "dialog", "alertdialog", "toolbar", "tablist", "tab", "button"})
# Class/id names of chrome concepts (as markup vocabulary, like trafilatura's own lists): paywall
# and sign-up boxes, consent managers, related or recommended stories, share bars, ad slots,
# skip links, login boxes, modals. Matched as whole hyphen/underscore-separated tokens.
_CHROME_NAME = re.compile(
    r"(?:^|[\s_-])(?:paywall|piano|subscri\w*|newsletters?|promos?|promotion\w*|cta|consent|cookies?|gdpr|cmp|"
    r"didomi|onetrust|related|recommend\w*|popular|most-?read|trending|outbrain|taboola|share|sharing|social|"
    r"breadcrumbs?|skip-?links?|skiplinks|login|sign-?in|sign-?up|ads?|advert\w*|sponsor\w*|modal|overlay|"
    r"toolbar|sidebar|banner|widget)(?:$|[\s_-])",
    re.I,
)
# Block elements only: removing an inline link inside a sentence would break the sentence.
_BLOCKS = ("div", "section", "ul", "ol", "dl", "table", "p", "li", "blockquote", "header", "article", "main",
           "h2", "h3", "h4", "h5", "h6")
_CONTAINERS = ("div", "section", "article", "header", "ul", "ol", "li", "p", "table", "tr", "td")


def _text(el) -> str:
    return re.sub(r"\s+", " ", el.text_content() or "").strip()


def _link_words(el) -> int:
    return sum(len(_words(a.text_content() or "")) for a in el.iter("a"))


def _remove(el, removed: list[str]) -> None:
    parent = el.getparent()
    if parent is None:
        return
    t = _text(el)
    if t:
        removed.append(t[:300])
    tail = el.tail
    if tail and tail.strip():  # keep the text that follows the element
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


class _Page:
    """Facts about the whole page that guard against removing the article itself."""

    def __init__(self, tree):
        self.body_words = sum(len(_words(_text(p))) - _link_words(p) for p in tree.iter("p"))

    def holds_main_text(self, el) -> bool:
        if el.tag == "h1" or next(el.iter("h1"), None) is not None:
            return True
        prose = sum(len(_words(_text(p))) - _link_words(p) for p in el.iter("p"))
        return prose >= 150 and prose >= 0.4 * max(self.body_words, 1)


def strip_chrome(tree, template: set[str] | None = None) -> list[str]:
    """Remove the page's chrome from an lxml HTML tree in place; return the removed texts.

    Only structural signals: element types (nav, footer, aside, form, dialog, ...), ARIA roles,
    hidden elements, class/id names of chrome concepts, the block around a form or a row of
    buttons, blocks made mostly of links (plus the short label just before such a block), short
    blocks that occur more than once on the page, everything outside the container of the
    headline and the prose, and ``template``: blocks (see :func:`template_blocks`) that other
    pages of the same site also carry. An element holding the headline or most of the page's
    prose is never removed by the name or form rules."""
    removed: list[str] = []
    for el in list(tree.iter("script", "style", "noscript", "template")):
        parent = el.getparent()
        if parent is not None:
            tail = el.tail
            parent.remove(el)
            if tail and tail.strip():
                parent.text = (parent.text or "") + tail
    page = _Page(tree)

    def alive(el) -> bool:
        return _attached(el, tree)

    # 0. the small block around a form or a row of buttons: a sign-up box, a consent banner
    controls = ("form", "button", "input", "select", "textarea")
    for el in list(tree.iter(*controls)):
        if not alive(el):
            continue
        target, node = None, el.getparent()
        for _ in range(3):
            if node is None or node.tag in ("body", "html", "main", "article"):
                break
            outside = len(_words(_text(node))) - sum(len(_words(_text(c))) for c in node.iter(*controls) if c is not node)
            if outside > 40 or page.holds_main_text(node):
                break
            if node.tag in ("div", "section", "p", "ul", "ol", "li", "header", "aside", "nav", "footer", "dialog"):
                target = node
            node = node.getparent()
        if target is not None:
            _remove(target, removed)

    # 1. element types, roles, hidden elements
    for el in list(tree.iter()):
        if not isinstance(el.tag, str) or not alive(el):
            continue
        tag = el.tag.lower()
        role = (el.get("role") or "").strip().lower()
        hidden = el.get("hidden") is not None or (el.get("aria-hidden") or "").lower() == "true" \
            or re.search(r"display\s*:\s*none|visibility\s*:\s*hidden", el.get("style") or "", re.I)
        if tag == "header" and not page.holds_main_text(el):
            _remove(el, removed)
        elif tag in _DROP_TAGS or role in _DROP_ROLES or (el.get("aria-modal") or "").lower() == "true" or hidden:
            if tag in ("form", "button", "input", "select", "textarea", "label") or not page.holds_main_text(el) or hidden:
                _remove(el, removed)

    # 2. class/id names of chrome concepts
    for el in list(tree.iter()):
        if not isinstance(el.tag, str) or el.tag in ("html", "body") or not alive(el):
            continue
        names = f"{el.get('class') or ''} {el.get('id') or ''}"
        if _CHROME_NAME.search(names) and not page.holds_main_text(el):
            _remove(el, removed)

    # 3. blocks made mostly of links: menus, "read more" lists, teaser grids, CTA links
    for el in list(tree.iter(*_BLOCKS)):
        if not alive(el):
            continue
        words = len(_words(_text(el)))
        if not words or words > 250:
            continue
        links = [a for a in el.iter("a") if _words(a.text_content() or "")]
        density = _link_words(el) / words
        # a lone link that is most of a short block: "Lire aussi : <a>headline</a>", a button-like link
        if (len(links) >= 2 and density >= 0.6) or (len(links) == 1 and density >= 0.7 and words <= 30):
            if page.holds_main_text(el):
                continue
            label = _label_before(el)
            _remove(el, removed)
            if label is not None:
                _remove(label, removed)

    # 4. repeated short blocks (the same prompt at the top and the bottom of the page)
    leaves = [el for el in tree.iter("p", "li", "div", "span", "h2", "h3", "h4", "h5", "h6")
              if alive(el) and not any(isinstance(c.tag, str) and c.tag in _CONTAINERS for c in el)]
    counts = Counter(textmod.fold(_text(el)) for el in leaves)
    for el in leaves:
        key = textmod.fold(_text(el))
        if counts[key] >= 2 and 3 <= len(_words(key)) <= 30 and alive(el):
            _remove(el, removed)

    # 5. blocks the site's other pages carry too (its template), when they are not prose
    if template:
        for el in _leaf_blocks(tree):
            if alive(el) and _block_key(el) in template and _templatable(el) and not page.holds_main_text(el):
                _remove(el, removed)

    # 6. everything outside the smallest element holding the headline and the article's prose
    node = _content_container(tree)
    while node is not None and node.tag != "body" and node.getparent() is not None:
        parent = node.getparent()
        for sibling in list(parent):
            if sibling is not node and isinstance(sibling.tag, str):
                _remove(sibling, removed)
        node = parent
    return removed


def _prose(el) -> int:
    """Words of running text in a paragraph: not link text, only when most of it is not links."""
    words = len(_words(_text(el)))
    links = _link_words(el)
    return words - links if words >= 20 and links <= 0.3 * words else 0


def _content_container(tree):
    """The lowest common ancestor of the headline and every paragraph of prose (20 words or more,
    few links), never a paragraph itself; None when the page gives no such signal (no prose, or
    the ancestor is the whole body, e.g. when a teaser with a long blurb survived)."""
    chosen = [p for p in tree.iter("p") if _prose(p)]
    if not chosen:
        return None
    h1 = next(tree.iter("h1"), None)
    if h1 is not None:
        chosen.append(h1)
    common = None
    for el in chosen:
        path = [el, *el.iterancestors()]
        if common is None:
            common = path
        else:
            ids = {id(x) for x in path}
            common = [x for x in common if id(x) in ids]
    node = common[0] if common else None
    if node is not None and node.tag in ("p", "h1"):
        node = node.getparent()
    if node is None or node.tag in ("html", "body"):
        return None
    return node


def _leaf_blocks(tree) -> list:
    return [el for el in tree.iter("p", "li", "div", "span", "h2", "h3", "h4", "h5", "h6", "td")
            if not any(isinstance(c.tag, str) and c.tag in _CONTAINERS for c in el)]


def _block_key(el) -> str:
    """A block's text, case- and accent-folded, numbers made alike ("3 articles" ~ "4 articles")."""
    return re.sub(r"\d+", "#", " ".join(textmod.fold(_text(el)).split()))


def _templatable(el) -> bool:
    """Short, and not a paragraph of prose: a block with a link, or a block that is not a <p>."""
    n = len(_words(_text(el)))
    return 3 <= n <= 60 and (el.tag != "p" or next(el.iter("a"), None) is not None)


def template_blocks(pages: list[bytes]) -> set[str]:
    """The keys of the blocks seen on other pages of the same site (see strip_chrome step 5)."""
    import lxml.html

    keys: set[str] = set()
    for raw in pages:
        try:
            tree = lxml.html.document_fromstring(re.sub(r"^\s*<\?xml[^>]*>", "", _decode_html(raw, "peer")))
        except Exception:  # a peer that no longer parses teaches nothing
            continue
        for el in list(tree.iter("script", "style", "noscript", "template")):
            el.getparent().remove(el)
        keys.update(_block_key(el) for el in _leaf_blocks(tree) if _templatable(el))
    return keys


def _attached(el, tree) -> bool:
    root = tree.getroottree().getroot()
    node = el
    while node is not None:
        if node is root:
            return True
        node = node.getparent()
    return False


def _label_before(el):
    """The short heading or 'Read more:'-style line just before a removed block, if any."""
    prev = el.getprevious()
    if prev is None or not isinstance(prev.tag, str) or (prev.tail or "").strip():
        return None
    t = _text(prev)
    n = len(_words(t))
    if not 0 < n <= 6:
        return None
    if prev.tag in ("h2", "h3", "h4", "h5", "h6") or t.endswith((":", "：")):
        return prev
    return None


def _standfirst(tree) -> list[str]:
    """Paragraphs of prose (15 words or more, few links) in the <header> that holds the headline."""
    h1 = next(tree.iter("h1"), None)
    header = next((a for a in h1.iterancestors("header")), None) if h1 is not None else None
    if header is None:
        return []
    out = []
    for p in header.iter("p"):
        t = clean_chars(_text(p)).strip()
        n = len(_words(t))
        if n >= 15 and _link_words(p) <= 0.2 * n:
            out.append(t)
    return out


def _decode_html(raw: bytes, name: str) -> str:
    head = raw[:4096].decode("ascii", errors="ignore")
    m = re.search(r"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", head, re.I)
    if m and not raw.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode(m.group(1))
        except (LookupError, UnicodeDecodeError):
            pass
    return _decode_text(raw, name)[0]


def extract_html(raw: bytes, name: str, peers: Any = None) -> tuple[str, dict[str, str | None], list[str]]:
    """(main text, page metadata, removed chrome) of an HTML page. ``peers(host, source)``, when
    given, returns other pages (bytes) of the same site: blocks they share with this page are the
    site's template."""
    import lxml.html
    import trafilatura

    html = _decode_html(raw, name)
    html = re.sub(r"^\s*<\?xml[^>]*>", "", html)  # lxml refuses str input with an encoding declaration
    try:
        tree = lxml.html.document_fromstring(html)
    except Exception as exc:  # lxml's ParserError, ValueError on odd input
        raise IngestError(name, f"is not readable HTML ({type(exc).__name__}: {exc})".rstrip(), "invalid") from None
    metadata = html_metadata(tree)
    template = None
    if peers is not None:
        host = urlsplit(metadata["url"]).netloc if metadata.get("url") else None
        template = template_blocks(peers(host, metadata.get("source")))
    removed = strip_chrome(tree, template)
    standfirst = _standfirst(tree)
    text = trafilatura.extract(tree, include_comments=False, include_tables=True, include_images=False,
                               include_links=False, favor_precision=False, output_format="txt", deduplicate=False,
                               with_metadata=False)
    body = clean_chars(text or "")
    if body.strip():  # the standfirst sits in the headline's <header>, which extractors skip
        folded = textmod.fold(body)
        body = "\n".join([p for p in standfirst if textmod.fold(p) not in folded] + [body])
    lines, seen = [], set()
    for line in body.split("\n"):
        key = textmod.fold(line).strip()
        if key and key in seen and len(_words(key)) <= 40:
            continue  # a block repeated in the extraction
        seen.add(key)
        lines.append(line)
    return "\n".join(lines).strip(), metadata, removed


# ---- PDF ---------------------------------------------------------------------------------------

_PAGE_NUMBER = re.compile(r"^(?:(?:page|p\.)\s*)?[-–—(]?\s*\d{1,4}\s*[-–—)]?(?:\s*(?:/|of|sur|de)\s*\d{1,4})?$", re.I)


def _pdf_info(reader) -> dict[str, str | None]:
    try:
        info = reader.metadata or {}
    except Exception:
        info = {}
    get = lambda k: _one_line(info.get(k)) if info.get(k) is not None else None  # noqa: E731
    try:
        lang = normalize_language(str(reader.trailer["/Root"].get("/Lang") or ""))
    except Exception:
        lang = None
    return {"title": get("/Title"), "author": get("/Author"), "created": normalize_date(get("/CreationDate")),
            "language": lang}


def _meaningful_title(title: str | None) -> str | None:
    """A PDF's /Title unless it is a file name or a placeholder left by the authoring tool."""
    if not title or len(_words(title)) == 0:
        return None
    if re.search(r"\.(?:docx?|odt|pdf|indd|pptx?|rtf|txt)\s*$", title, re.I) or re.fullmatch(r"(?i)untitled\S*|sans titre\S*|document\d*", title):
        return None
    return title


def extract_pdf(raw: bytes, name: str) -> tuple[str, dict[str, str | None], list[str]]:
    """(text, metadata, removed running headers/footers) of a PDF's text layer."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(raw), strict=False)
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception:
                ok = 0
            if not ok:
                raise IngestError(name, "is a password-protected PDF; remove the protection and add it again", "invalid")
        n_pages = len(reader.pages)
    except IngestError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, AssertionError, RecursionError) as exc:
        raise IngestError(name, f"is not a readable PDF ({type(exc).__name__})", "invalid") from None
    if n_pages > MAX_PDF_PAGES:
        raise IngestError(name, f"has {n_pages} pages; the limit is {MAX_PDF_PAGES}", "too_large")
    pages: list[list[str]] = []
    for page in reader.pages:
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # one bad page must not lose the others
            log.warning("%s: a page could not be read (%s)", name, type(exc).__name__)
            text = ""
        pages.append([ln.strip() for ln in clean_chars(text).split("\n")])
    info = _pdf_info(reader)
    body, removed = _drop_running_lines(pages)
    return reflow(body, always=True), info, removed


def _drop_running_lines(pages: list[list[str]]) -> tuple[str, list[str]]:
    """Page texts joined, without page numbers and the lines repeated at the top or bottom of
    most pages (running headers and footers)."""
    def key(line: str) -> str:
        return re.sub(r"\d+", "#", textmod.fold(line)).strip()

    edge_counts: Counter[str] = Counter()
    for lines in pages:
        nonempty = [ln for ln in lines if ln]
        edge_counts.update({key(ln) for ln in nonempty[:3] + nonempty[-3:]})
    n = len(pages)
    running = {k for k, c in edge_counts.items() if k and n >= 2 and c >= max(2, (n + 1) // 2)}
    out, removed = [], []
    for lines in pages:
        nonempty = [i for i, ln in enumerate(lines) if ln]
        edges = set(nonempty[:3] + nonempty[-3:])
        kept = []
        for i, ln in enumerate(lines):
            if ln and ((i in edges and key(ln) in running) or _PAGE_NUMBER.fullmatch(ln)):
                removed.append(ln)
                continue
            kept.append(ln)
        out.append("\n".join(kept).strip("\n"))
    return "\n\n".join(p for p in out if p.strip()), removed


# ---- text --------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?…:;»\"”)\]]$")
_BULLET = re.compile(r"^(?:[-–—•*·▪►]\s|\d{1,3}[.)]\s)")


def _hard_wrapped(lines: list[str]) -> bool:
    """A block whose lines were cut at a fixed width (wire copy, e-mail, PDF text)."""
    if len(lines) < 2:
        return False
    longest = max(len(ln) for ln in lines)
    return longest <= 110 and all(len(ln) >= 0.5 * longest for ln in lines[:-1])


def reflow(text: str, *, always: bool = False) -> str:
    """Join the lines of each paragraph back together (one paragraph per line, as the chunker
    expects), removing end-of-line hyphenation. Blocks are separated by blank lines; without
    ``always`` only blocks that look hard-wrapped are joined."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        if not lines:
            continue
        if not (always or _hard_wrapped(lines)):
            out.append("\n".join(lines))
            continue
        longest = max(len(ln) for ln in lines)
        paragraphs: list[str] = []
        current = ""
        for i, line in enumerate(lines):
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if current.endswith("-") and len(current) > 1 and current[-2].isalpha() and line[:1].islower():
                current = current[:-1] + line
            elif current:
                current += ("" if current.endswith("-") else " ") + line
            else:
                current = line
            short = len(line) < 0.75 * longest
            ends = bool(_SENTENCE_END.search(line))
            heading = short and not ends and nxt[:1].isupper() and len(_words(line)) <= 12
            if not nxt or _BULLET.match(nxt) or (ends and short) or heading:
                paragraphs.append(current)
                current = ""
        if current:
            paragraphs.append(current)
        out.append("\n".join(paragraphs))
    return "\n\n".join(out)


def _first_line_title(text: str) -> str | None:
    """The first line, when it is short enough to be a headline."""
    for line in text.split("\n"):
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 200 and len(_words(line)) <= 30 else None
    return None


# ---- one file -> one document ------------------------------------------------------------------


def _front_matter(fields: dict[str, Any]) -> str:
    clean = {k: v for k, v in fields.items() if v is not None}
    return "---\n" + yaml.safe_dump(clean, allow_unicode=True, sort_keys=False, default_flow_style=False, width=1000) + "---\n"


def prepare(raw: bytes, name: str | None, overrides: Overrides | None = None, *, patterns: list[str] | None = None,
            max_bytes: int = 20_000_000, added: str | None = None, peers: Any = None) -> Prepared:
    """One file's bytes -> the document to store; raises IngestError (one sentence) when it cannot be used.

    ``name`` is the file's name as given (None or '-' for standard input); ``patterns`` the
    loader's boilerplate patterns (used to parse the result back exactly as the index will);
    ``added`` keeps the date a re-extracted document was first added; ``peers`` gives other pages
    of the same site (see :func:`site_peers`)."""
    o = overrides or Overrides()
    shown = name if name and name != "-" else "standard input"
    if len(raw) > max_bytes:
        raise IngestError(shown, f"is {len(raw):,} bytes, over the {max_bytes:,}-byte limit for one file", "too_large")
    if not raw.strip():
        raise IngestError(shown, "is empty", "empty")
    if o.doc_id is not None:
        check_id(o.doc_id)
    if o.language is not None and normalize_language(o.language) not in LANGUAGES:
        raise InvalidInputError(f"language must be one of {', '.join(LANGUAGES)}, got {o.language!r}")
    if o.published is not None and normalize_date(o.published) is None:
        raise InvalidInputError(f"published must be a date such as 2025-02-10, got {o.published!r}")
    if o.url is not None and normalize_url(o.url) is None:
        raise InvalidInputError(f"url must be an absolute http(s) address, got {o.url!r}")
    kind = detect_kind(raw, name)
    sha = hashlib.sha256(raw).hexdigest()
    notes: list[str] = []
    removed: list[str] = []
    found: dict[str, str | None] = {}
    provenance: dict[str, Any] = {"format": kind}

    if kind == "markdown":
        return _prepare_markdown(raw, shown, name, o, patterns or [], sha)
    if kind == "html":
        body, found, removed = extract_html(raw, shown, peers)
        import trafilatura

        provenance["extractor"] = f"trafilatura {trafilatura.__version__}"
    elif kind == "pdf":
        body, info, removed = extract_pdf(raw, shown)
        import pypdf

        provenance["extractor"] = f"pypdf {pypdf.__version__}"
        if info.get("created"):
            provenance["pdf_created"] = info["created"]
        if info.get("author"):
            provenance["pdf_author"] = info["author"]
        found = {"title": _meaningful_title(info.get("title")), "language": info.get("language")}
    else:
        text, encoding = _decode_text(raw, shown)
        if encoding != "utf-8":
            provenance["encoding"] = encoding
        body = reflow(clean_chars(text))
    if len(_words(body)) < MIN_WORDS:
        hint = {"html": "no article text was found in the page",
                "pdf": "the PDF has no text layer (a scan?); run it through OCR first",
                "text": "the file holds almost no text"}[kind]
        raise IngestError(shown, f"is empty after extraction: {hint}", "empty")

    title = _one_line(o.title) or found.get("title") or (_first_line_title(body) if kind != "html" else None)
    source = _one_line(o.source) or found.get("source")
    published = normalize_date(o.published) or found.get("published")
    url = normalize_url(o.url) or found.get("url")
    language = normalize_language(o.language) or found.get("language")
    if not title:
        raise IngestError(shown, "has no title in its metadata; pass one (--title / form field 'title')", "invalid")
    if not source:
        where = {"html": "the page names no publisher (JSON-LD publisher, og:site_name)",
                 "pdf": "a PDF does not name its publisher", "text": "a text file does not name its publisher"}[kind]
        raise IngestError(shown, f"needs a source: {where}; pass it (--source / form field 'source')", "invalid")
    if language is None:
        language = textmod.detect_language(body)
        provenance["language"] = "detected"
        notes.append(f"language not stated, detected as '{language}'")
    elif language not in LANGUAGES:
        raise IngestError(shown, f"is in language '{language}'; articles must be in French or English "
                                 f"(pass --language fr|en if the metadata is wrong)", "unsupported")
    doc_id = o.doc_id or (slug(Path(name).stem) if _suffix(name) else slug(title))
    check_id(doc_id, "the document id")
    original_name = f"{ORIGINALS_DIR}/{doc_id}{KIND_SUFFIX[kind]}"
    provenance.update({"original": original_name, "sha256": sha,
                       "added": added or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
    if name and name != "-":
        provenance["file"] = Path(name).name
    given = {k: v for k, v in (("title", o.title), ("source", o.source), ("published", o.published), ("url", o.url),
                               ("language", o.language)) if v is not None}
    if given:  # what the person adding it said, re-applied when the extraction is redone
        provenance["given"] = given
    fields = {"title": title, "source": source, "language": language, "published": published, "url": url,
              "boilerplate": EXTRACTED if kind == "html" else None, "ingest": provenance}
    markdown = _front_matter(fields) + body.rstrip("\n") + "\n"
    document = _parse_back(markdown, doc_id, shown, patterns or [])
    return Prepared(doc_id, kind, shown, markdown, document, raw, original_name, sha, notes, removed)


def _prepare_markdown(raw: bytes, shown: str, name: str | None, o: Overrides, patterns: list[str], sha: str) -> Prepared:
    """A Markdown file with front matter is stored as it is (overrides are not applied to it)."""
    if any(v is not None for v in (o.title, o.source, o.published, o.url, o.language)):
        raise InvalidInputError("title/source/published/url/language apply to HTML, PDF and text files; "
                                "edit the front matter of a Markdown file instead")
    probe = Path(name if name and name != "-" else "document.md")
    try:
        doc = parse_document(probe, raw, patterns)
    except DocumentError as exc:
        raise IngestError(shown, exc.problem, "empty" if "empty" in exc.problem or "no text" in exc.problem else "invalid") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise IngestError(shown, f"is {len(raw):,} bytes, over the {MAX_DOCUMENT_BYTES:,}-byte limit for one article", "too_large")
    front_id = re.search(r"(?m)^id\s*:", raw.decode("utf-8-sig").split("\n---", 1)[0]) is not None
    if o.doc_id:
        doc_id = o.doc_id
    elif _suffix(name) or front_id:
        doc_id = doc.doc_id
    else:
        doc_id = slug(doc.title)
    check_id(doc_id, "the document id")
    markdown = raw.decode("utf-8-sig")
    if doc.doc_id != doc_id and front_id:
        raise IngestError(shown, f"says 'id: {doc.doc_id}' in its front matter, which differs from {doc_id!r}", "invalid")
    document = _parse_back(markdown, doc_id, shown, patterns)
    return Prepared(doc_id, "markdown", shown, markdown, document, None, None, sha)


def _parse_back(markdown: str, doc_id: str, shown: str, patterns: list[str]) -> Document:
    """Parse the would-be file with the loader: what is stored is exactly what gets indexed."""
    data = markdown.encode("utf-8")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise IngestError(shown, f"gives {len(data):,} bytes of text, over the {MAX_DOCUMENT_BYTES:,}-byte limit for one article", "too_large")
    try:
        doc = parse_document(Path(f"{doc_id}.md"), data, patterns)
    except DocumentError as exc:
        reason = "empty" if "no text" in exc.problem or "empty" in exc.problem else "invalid"
        raise IngestError(shown, exc.problem, reason) from None
    if len(_words(doc.text)) < MIN_WORDS:
        raise IngestError(shown, "is empty after removing boilerplate", "empty")
    return doc


# ---- the documents folder ----------------------------------------------------------------------


@contextlib.contextmanager
def documents_lock(directory: Path) -> Iterator[None]:
    """One add or delete at a time on a documents folder (across processes)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)  # a lock on the folder itself: no lock file left in it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    """Write a file that must not exist yet: a temporary name, fsync, then a hard link (which fails
    instead of replacing), so a reader never sees half a file and nothing is overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def existing_documents(directory: Path, patterns: list[str]) -> list[Document]:
    if not Path(directory).is_dir():
        return []
    try:
        docs, _ = load_documents(directory, patterns, skip_invalid=True)
    except DocumentError:  # an empty folder
        return []
    return docs


def check_new(prepared: list[Prepared], directory: Path, patterns: list[str], *, replace: bool = False,
              existing: list[Document] | None = None) -> None:
    """Duplicates: the same id, the same canonical URL or the same text as a document already in
    the folder (``existing``, read from it when not given) or earlier in the same batch. With
    ``replace``, a document with the same id is the one being replaced, not a duplicate."""
    docs = existing_documents(directory, patterns) if existing is None else existing
    if replace:
        replaced = {p.doc_id for p in prepared}
        docs = [d for d in docs if d.doc_id not in replaced]
    ids = {d.doc_id: Path(d.path).name for d in docs}
    urls = {d.url: d.doc_id for d in docs if d.url}
    texts = {_text_key(d.text): d.doc_id for d in docs}
    for p in prepared:
        where = p.name
        for name in (f"{p.doc_id}{s}" for s in DOCUMENT_SUFFIXES):
            if (directory / name).exists() and p.doc_id not in ids and not replace:
                ids[p.doc_id] = name
        if p.doc_id in ids:
            raise IngestError(where, f"would be document '{p.doc_id}', which already exists ({ids[p.doc_id]}); "
                                     f"choose another id (--id) or delete it first", "duplicate")
        if p.original_name and (directory / p.original_name).exists() and not replace:
            raise IngestError(where, f"would overwrite {p.original_name}; choose another id (--id)", "duplicate")
        if p.document.url and p.document.url in urls:
            raise IngestError(where, f"is already in the corpus as '{urls[p.document.url]}' (same URL {p.document.url})", "duplicate")
        key = _text_key(p.document.text)
        if key in texts:
            raise IngestError(where, f"has the same text as document '{texts[key]}', already in the corpus", "duplicate")
        ids[p.doc_id] = f"{p.doc_id}.md"
        if p.document.url:
            urls[p.document.url] = p.doc_id
        texts[key] = p.doc_id


def _text_key(text: str) -> str:
    return hashlib.sha256(" ".join(textmod.fold(text).split()).encode()).hexdigest()


def write_prepared(p: Prepared, directory: Path) -> list[Path]:
    """Store one prepared document: the original first, then the .md (the loader's trigger).
    Returns the files created; on failure, removes what it created and re-raises."""
    created: list[Path] = []
    try:
        if p.original is not None and p.original_name:
            target = directory / p.original_name
            _write_new(target, p.original)
            created.append(target)
        target = directory / f"{p.doc_id}.md"
        _write_new(target, p.markdown.encode("utf-8"))
        created.append(target)
    except FileExistsError as exc:
        _unlink_all(created)
        raise IngestError(p.name, f"{Path(exc.filename or '').name or 'a file'} appeared meanwhile; try again", "duplicate") from None
    except OSError as exc:
        _unlink_all(created)
        raise IngestError(p.name, f"cannot be stored in {directory} ({exc.strerror or exc})", "invalid") from None
    return created


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # only succeeds when empty
    except OSError:
        pass


def _unlink_all(paths: list[Path]) -> None:
    for path in reversed(paths):
        try:
            path.unlink(missing_ok=True)
        except OSError:  # pragma: no cover - nothing better to do while rolling back
            log.warning("could not remove %s while rolling back", path)


@dataclass
class Input:
    """One file to add: its bytes and the name it was given (None / '-' for standard input)."""

    raw: bytes
    name: str | None
    overrides: Overrides = field(default_factory=Overrides)
    added: str | None = None  # kept when an extraction is redone


def read_input(path: str, max_bytes: int, stdin: Any = None) -> Input:
    """Read a file given on the command line ('-' reads standard input), refusing oversized files
    before reading them whole."""
    import sys

    if path == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        raw = stream.read(max_bytes + 1)
        return Input(raw, "-")
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"{path}: no such file")
    if not p.is_file():
        raise InvalidInputError(f"{path}: is not a regular file")
    size = p.stat().st_size
    if size > max_bytes:
        raise IngestError(path, f"is {size:,} bytes, over the {max_bytes:,}-byte limit for one file", "too_large")
    try:
        return Input(p.read_bytes(), str(p))
    except OSError as exc:
        raise InvalidInputError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def expand_paths(paths: list[str]) -> tuple[list[str], list[str]]:
    """Files to add from command-line arguments: a folder gives its supported files (sorted, not
    recursive, hidden ones skipped). Returns (files, skipped files of unsupported types)."""
    files, skipped = [], []
    for arg in paths:
        p = Path(arg)
        if arg != "-" and p.is_dir():
            for child in sorted(p.iterdir()):
                if child.name.startswith(".") or not child.is_file():
                    continue
                (files if child.suffix.lower() in SUFFIX_KINDS else skipped).append(str(child))
        else:
            files.append(arg)
    return files, skipped


MAX_PEERS = 10


def site_peers(directory: Path, patterns: list[str], exclude: set[str] | None = None, existing: list[Document] | None = None):
    """peers(host, source) -> the kept HTML originals of up to MAX_PEERS other documents of the
    same site (same URL host, or else the same source name), most recently added first."""
    docs = existing_documents(directory, patterns) if existing is None else existing
    docs = [d for d in docs if d.doc_id not in (exclude or set())]

    def peers(host: str | None, source: str | None) -> list[bytes]:
        same = [d for d in docs if (host and d.url and urlsplit(d.url).netloc == host)
                or (not host and source and textmod.fold(d.source) == textmod.fold(source))]
        found = []
        for d in same:
            info = front_matter(Path(d.path)).get("ingest")
            if not isinstance(info, dict) or info.get("format") != "html" or not info.get("original"):
                continue
            original = directory / str(info["original"])
            if original.is_file() and original.resolve().is_relative_to(directory.resolve()):
                found.append((str(info.get("added") or ""), original))
        found.sort(reverse=True)
        out = []
        for _, original in found[:MAX_PEERS]:
            try:
                out.append(original.read_bytes())
            except OSError:
                continue
        return out

    return peers


def add_documents(assistant: Builder, inputs: list[Input], *, skip_invalid: bool = False, max_bytes: int | None = None,
                  replace: bool = False) -> dict:
    """Prepare, check and store every input, rebuild the index (embedding only the new
    documents) and switch the assistant to it. All or nothing: on any error nothing is left
    written and the previous index keeps serving. With ``skip_invalid`` the files that cannot be
    used are listed instead, and the others are added.

    With ``replace``, a document with the same id is replaced (its old .md and original are
    restored if anything fails).

    Returns {"added": [metadata...], "skipped": [message...], "build": build summary}."""
    settings = assistant.settings
    directory = Path(settings.documents_dir)
    patterns = settings.boilerplate_patterns
    if not inputs:
        raise InvalidInputError("nothing to add")
    with documents_lock(directory):
        prepared: list[Prepared] = []
        skipped: list[str] = []
        existing = existing_documents(directory, patterns)  # read once for the whole batch
        for item in inputs:
            try:
                exclude = {item.overrides.doc_id} if replace and item.overrides.doc_id else None
                p = prepare(item.raw, item.name, item.overrides, patterns=patterns,
                            max_bytes=settings.max_upload_bytes if max_bytes is None else max_bytes,
                            peers=site_peers(directory, patterns, exclude, existing), added=item.added)
                check_new([*prepared, p], directory, patterns, replace=replace, existing=existing)
            except (IngestError, InvalidInputError) as exc:
                if not skip_invalid:
                    raise
                skipped.append(str(exc))
                continue
            prepared.append(p)
        if not prepared:
            raise IngestError(inputs[0].name or "the input", "nothing could be added: " + "; ".join(skipped), "invalid")
        created: list[Path] = []
        moved: list[tuple[Path, Path]] = []
        try:
            if replace:
                for p in prepared:
                    moved += _move_aside(_files_of(directory, p.doc_id, patterns))
            for p in prepared:
                created += write_prepared(p, directory)
            summary = assistant.build()
        except BaseException:
            _unlink_all(created)
            _restore(moved)
            _remove_if_empty(directory / ORIGINALS_DIR)
            raise
        for aside, _ in moved:
            aside.unlink(missing_ok=True)
    index = getattr(assistant, "index", None)
    if index is not None and hasattr(index, "chunks"):
        chunks = Counter(c.doc_id for c in index.chunks)
    else:  # a store without an in-memory chunk list (Milvus): its documents know their passage count
        chunks = Counter({p.doc_id: int((index.document(p.doc_id) or {}).get("chunks", 0)) for p in prepared} if index else {})
    added = [{**p.metadata(), "chunks": chunks.get(p.doc_id, 0), "notes": p.notes} for p in prepared]
    return {"added": added, "skipped": skipped, "build": summary}


def _find(directory: Path, doc_id: str, patterns: list[str]) -> tuple[Path, Document | None]:
    for suffix in DOCUMENT_SUFFIXES:
        path = directory / f"{doc_id}{suffix}"
        if path.is_file():
            return path, None
    for doc in existing_documents(directory, patterns):  # a front-matter id that differs from the file name
        if doc.doc_id == doc_id:
            return Path(doc.path), doc
    raise IngestError(doc_id, "no such document; `summit ask` and GET /api/documents list the ids", "not_found")


def _files_of(directory: Path, doc_id: str, patterns: list[str]) -> list[Path]:
    """A document's .md and its originals; [] when there is no such document."""
    try:
        md, _ = _find(directory, doc_id, patterns)
    except IngestError:
        return []
    return [md] + sorted((directory / ORIGINALS_DIR).glob(f"{glob_escape(md.stem)}.*"))


def _move_aside(files: list[Path]) -> list[tuple[Path, Path]]:
    """Rename files to hidden names (which the loader and the staleness check ignore)."""
    moved = []
    try:
        for path in files:
            aside = path.parent / f".deleted-{uuid.uuid4().hex[:8]}-{path.name}"
            os.rename(path, aside)
            moved.append((aside, path))
    except BaseException:
        _restore(moved)
        raise
    return moved


def _restore(moved: list[tuple[Path, Path]]) -> None:
    for aside, path in reversed(moved):
        try:
            os.replace(aside, path)
        except OSError:  # pragma: no cover - nothing better to do while rolling back
            log.warning("could not restore %s from %s", path, aside)


def front_matter(path: Path) -> dict:
    """The YAML front matter of a stored document ({} when unreadable)."""
    try:
        content = path.read_text(encoding="utf-8-sig")
        if not content.startswith("---"):
            return {}
        meta = yaml.safe_load(content.split("\n---", 1)[0].removeprefix("---"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return meta if isinstance(meta, dict) else {}


def reextract(assistant: Builder, doc_ids: list[str] | None = None) -> dict:
    """Redo the extraction of documents from their kept originals (after an extractor upgrade or a
    change of these rules), re-applying what was given when they were added. Only documents whose
    text or metadata come out different are rewritten; then one rebuild.

    Returns {"changed": [ids], "unchanged": [ids], "skipped": [message...], "build": summary or None}."""
    settings = assistant.settings
    directory = Path(settings.documents_dir)
    patterns = settings.boilerplate_patterns
    wanted = [check_id(d, "document id") for d in doc_ids or []]
    existing = existing_documents(directory, patterns)
    if not wanted:
        wanted = [d.doc_id for d in existing]
    inputs, unchanged, skipped = [], [], []
    for doc_id in wanted:
        md, _ = _find(directory, doc_id, patterns)
        info = front_matter(md).get("ingest")
        original = directory / str(info.get("original") or "") if isinstance(info, dict) else None
        if not isinstance(info, dict) or not info.get("original"):
            skipped.append(f"{doc_id}: written by hand (no original kept); nothing to redo")
            continue
        if original is None or not original.is_file() or not original.resolve().is_relative_to(directory.resolve()):
            skipped.append(f"{doc_id}: its original {info.get('original')} is missing")
            continue
        given = info.get("given") if isinstance(info.get("given"), dict) else {}
        overrides = Overrides(doc_id=doc_id, **{k: str(v) for k, v in given.items() if k in ("title", "source", "published", "url", "language")})
        raw = original.read_bytes()
        given_name = Path(str(info.get("file") or "")).name
        name = given_name if _suffix(given_name) == original.suffix.lower() else f"{doc_id}{original.suffix}"
        p = prepare(raw, name, overrides, patterns=patterns, max_bytes=max(settings.max_upload_bytes, len(raw)),
                    added=str(info.get("added")) if info.get("added") else None, peers=site_peers(directory, patterns, {doc_id}, existing))
        if p.markdown == md.read_text(encoding="utf-8"):
            unchanged.append(doc_id)
            continue
        inputs.append(Input(raw, name, overrides, str(info.get("added")) if info.get("added") else None))
    if not inputs:
        return {"changed": [], "unchanged": unchanged, "skipped": skipped, "build": None}
    result = add_documents(assistant, inputs, replace=True, max_bytes=max(settings.max_upload_bytes, *(len(i.raw) for i in inputs)))
    return {"changed": [d["doc_id"] for d in result["added"]], "unchanged": unchanged, "skipped": skipped,
            "build": result["build"]}


def delete_document(assistant: Builder, doc_id: str) -> dict:
    """Remove a document and its original, rebuild and switch; restore both if the build fails
    (e.g. it was the last document). Returns {"deleted": id, "files": [...], "build": summary}."""
    check_id(doc_id, "document id")
    settings = assistant.settings
    directory = Path(settings.documents_dir)
    with documents_lock(directory):
        md, _ = _find(directory, doc_id, settings.boilerplate_patterns)
        files = _files_of(directory, doc_id, settings.boilerplate_patterns)
        others = [p for p in directory.iterdir() if p.suffix.lower() in DOCUMENT_SUFFIXES and p != md and not p.name.startswith(".")]
        if not others:
            raise IngestError(doc_id, "is the only document; add another one before deleting it", "invalid")
        moved = _move_aside(files)  # hidden names: the loader and the staleness check ignore them
        try:
            summary = assistant.build()
        except BaseException:
            _restore(moved)
            raise
        for aside, _ in moved:
            aside.unlink(missing_ok=True)
    return {"deleted": doc_id, "files": [str(p.relative_to(directory)) for p in files], "build": summary}


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)

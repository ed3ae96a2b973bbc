"""Hostile requests against the live server (issue #6): a table of malformed, oversized, mistyped
and malicious requests, each sent as raw bytes over a real socket to uvicorn (so nothing is
normalised by a client library: ``../``, NUL bytes and invalid UTF-8 reach the server as written).

Every case must get a 2xx or a 4xx, never a 5xx. Every response made by the app is JSON (404 and
405 included) with a ``detail`` sentence, carries ``X-Content-Type-Options: nosniff`` and holds no
stack trace. The few cases marked ``protocol`` are not HTTP at all (a NUL byte or raw invalid
UTF-8 in the request line, no Host header, ...): uvicorn refuses them before the app sees them,
with its own ``400 text/plain "Invalid HTTP request received."``; for those a 400 without a trace
is required, not JSON. Which requests are "not HTTP" depends on the parser uvicorn picked (h11,
or httptools when installed: it refuses a 100 kB URL or an unknown method, accepts HTTP/0.9 or
no Host), so those cases allow either outcome; the table passes under both. After the table, the server must still be healthy and still answer.
"""

from __future__ import annotations

import gzip
import http.client
import json
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import pytest
from fastapi.testclient import TestClient

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.conftest import LiveServer

pytestmark = pytest.mark.integration

CO_CHAIR_FR = "Qui co-préside le sommet ?"
DOC_ID = "rtl-une-semaine-pour-l-ia"
PASSWD_MARKER = "root:x:0:0"
TRACE_MARKERS = ("Traceback", 'File "', "site-packages", "/work/", "Error:")  # "Error:" = a bare exception repr


# ---- building requests -------------------------------------------------------------------------


def request(method: str, path: str | bytes, body: bytes | None = None, headers: dict[str, str | bytes] | None = None,
            *, content_type: str | None = "application/json", length: bool = True, host: bool = True) -> bytes:
    """One HTTP/1.1 request as bytes, exactly as given (the path is not normalised or escaped)."""
    target = path if isinstance(path, bytes) else path.encode("utf-8", "surrogatepass")
    lines = [method.encode() + b" " + target + b" HTTP/1.1"]
    if host:
        lines.append(b"Host: 127.0.0.1")
    hdrs: dict[str, str | bytes] = {}
    if body is not None and content_type is not None:
        hdrs["Content-Type"] = content_type
    if body is not None and length:
        hdrs["Content-Length"] = str(len(body))
    hdrs.update(headers or {})
    hdrs.setdefault("Connection", "close")
    for name, value in hdrs.items():
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode("latin-1")))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def js(value: Any) -> bytes:
    """JSON text; ensure_ascii keeps lone surrogates as \\udxxx escapes (valid JSON, invalid text)."""
    return json.dumps(value).encode()


def chunked(body: bytes, size: int = 1000) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


@dataclass(frozen=True)
class Case:
    id: str
    raw: bytes
    expect: tuple[int, ...]
    fragment: str = ""  # must appear in the JSON detail
    protocol: bool = False  # may be refused by uvicorn itself (400 text/plain) before reaching the app
    head: bool = False  # a HEAD request: no body to check
    must_not_contain: tuple[str, ...] = field(default=())


CASES: list[Case] = []


def case(id: str, raw: bytes, expect: int | tuple[int, ...], fragment: str = "", **kw: Any) -> None:
    CASES.append(Case(id, raw, (expect,) if isinstance(expect, int) else expect, fragment, **kw))


def ask(id: str, body: Any, expect: int | tuple[int, ...], fragment: str = "", **kw: Any) -> None:
    raw_body = body if isinstance(body, bytes) else js(body)
    case(f"ask/{id}", request("POST", "/api/ask", raw_body), expect, fragment, **kw)


def chat(id: str, body: Any, expect: int | tuple[int, ...], fragment: str = "", **kw: Any) -> None:
    raw_body = body if isinstance(body, bytes) else js(body)
    case(f"chat/{id}", request("POST", "/v1/chat/completions", raw_body), expect, fragment, **kw)


def search(id: str, query: str, expect: int | tuple[int, ...], fragment: str = "", **kw: Any) -> None:
    case(f"search/{id}", request("GET", "/api/search?" + query), expect, fragment, **kw)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


Q = "Qui co-préside le sommet ?"

# ---- /api/ask: questions ----
ask("empty", {"question": ""}, 422, "question is empty")
ask("whitespace", {"question": " \t\n\r "}, 422, "question is empty")
ask("unicode-spaces", {"question": "\u3000\u00a0\u2003"}, 422, "question is empty")
ask("only-nul", {"question": "\x00\x00\x00"}, 422, "question is empty")
ask("nul-inside", {"question": "Qui\x00 co-préside\x00 le sommet ?"}, 200)
ask("raw-nul-in-json", b'{"question": "Qui\x00 ?"}', 422, "not valid JSON")
ask("100k-chars", {"question": "x" * 100_000}, 413, "larger than the limit")
ask("30k-chars", {"question": "a" * 30_000}, 422, "30000 characters")
ask("1001-chars", {"question": "a" * 1001}, 422, "1001 characters")
ask("number", {"question": 42}, 422, "question: Input should be a valid string")
ask("float", {"question": 4.2}, 422, "question: Input should be a valid string")
ask("bool", {"question": True}, 422, "question: Input should be a valid string")
ask("null", {"question": None}, 422, "question: Input should be a valid string")
ask("array", {"question": ["Qui ?"]}, 422, "question: Input should be a valid string")
ask("object", {"question": {"text": "Qui ?"}}, 422, "question: Input should be a valid string")
ask("missing", {}, 422, "question: Field required")
ask("lone-high-surrogate", {"question": "Qui \ud800 ?"}, 422, "unpaired UTF-16 surrogate")
ask("lone-low-surrogate", {"question": "\udfff"}, 422, "unpaired UTF-16 surrogate")
ask("reversed-surrogates", {"question": "\udc00\ud800"}, 422, "unpaired UTF-16 surrogate")
ask("paired-surrogates-ok", b'{"question": "Qui co-pr\\u00e9side le sommet \\ud83d\\ude00 ?"}', 200)
ask("html-script", {"question": "<script>alert(1)</script><img src=x onerror=alert(1)>"}, 200)
ask("html-entities", {"question": "&lt;b&gt;Qui&lt;/b&gt; co-pr&eacute;side ?"}, 200)
ask("sql-injection", {"question": "'; DROP TABLE documents; --"}, 200)
ask("template-injection", {"question": "{{7*7}} ${jndi:ldap://127.0.0.1/x} %s%n"}, 200)
ask("bidi-controls", {"question": "\u202eQui\u202d co-préside \u2066le sommet\u2069 ?"}, 200)
ask("zero-width", {"question": "\u200b" * 900}, 200)
ask("emoji-1000", {"question": "\U0001f600" * 1000}, 200)
ask("combining-marks", {"question": "a\u0301" * 500}, 200)
ask("noncharacters", {"question": "\uffff\ufffe\U0010ffff"}, 200)
ask("c0-controls", {"question": "".join(chr(c) for c in range(1, 32))}, (200, 422))
ask("cjk-1000", {"question": "中文问题" * 250}, 200)
ask("ligatures-expand", {"question": "ﬁ" * 1000}, 200)  # NFKC would make 2000 characters
# ---- /api/ask: k and mode ----
for k, expect, fragment in [(0, 422, "greater than or equal to 1"), (-1, 422, "greater than or equal to 1"),
                            (10**9, 422, "less than or equal to 20"), (10**40, 422, "less than or equal to 20"),
                            ("5", 422, "valid integer"), (5.5, 422, "valid integer"), (True, 422, "valid integer"),
                            (False, 422, "valid integer"), (None, 422, "valid integer"), ([5], 422, "valid integer"),
                            ({"k": 5}, 422, "valid integer"), (5.0, 200, ""), (20, 200, "")]:
    ask(f"k={k!r}", {"question": Q, "k": k}, expect, fragment)
ask("k=1e400", b'{"question": "Qui ?", "k": 1e400}', 422, "finite number")
ask("k=NaN", b'{"question": "Qui ?", "k": NaN}', 422, "finite number")
ask("k=-Infinity", b'{"question": "Qui ?", "k": -Infinity}', 422, "finite number")
for mode, expect in [("HYBRID", 422), ("semantic", 422), (5, 422), (["dense"], 422), (None, 200), ("lexical", 200)]:
    ask(f"mode={mode!r}", {"question": Q, "mode": mode}, expect, "mode" if expect == 422 else "")
# ---- /api/ask: history ----
ask("history-21", {"question": Q, "history": ["Où ?"] * 21}, 422, "at most 20 items")
ask("history-10000", {"question": Q, "history": ["a"] * 10_000}, 422, "at most 20 items")
ask("history-20x1000", {"question": Q, "history": ["a" * 1000] * 20}, 200)
ask("history-20x3000", {"question": Q, "history": ["a" * 3000] * 20}, 422, "history item 0 is 3000 characters")
ask("history-huge-body", {"question": Q, "history": ["a" * 1000] * 70}, 413, "larger than the limit")
ask("history-string", {"question": Q, "history": "Où se tient le sommet ?"}, 422, "history")
ask("history-null", {"question": Q, "history": None}, 422, "history")
ask("history-object", {"question": Q, "history": {"0": "Où ?"}}, 422, "history")
ask("history-nested", {"question": Q, "history": [["Où ?"], {"q": 1}, None, 3]}, 422, "history.0")
ask("history-surrogate", {"question": Q, "history": ["ok", "\ud800"]}, 422, "history item 1 contains an unpaired")
ask("history-blank-items", {"question": "Et qui le co-préside ?", "history": ["", "   ", "\x00"]}, 200)
ask("history-html", {"question": "Et qui le co-préside ?", "history": ["<script>alert(1)</script>"]}, 200)
# ---- /api/ask: body shapes and JSON syntax ----
ask("body-null", b"null", 422, "must be a JSON object")
ask("body-array", b'[{"question": "Qui ?"}]', 422, "must be a JSON object")
ask("body-empty-array", b"[]", 422, "must be a JSON object")
ask("body-string", b'"Qui co-pr\\u00e9side ?"', 422, "must be a JSON object")
ask("body-number", b"42", 422, "must be a JSON object")
ask("body-true", b"true", 422, "must be a JSON object")
ask("body-empty", b"", 422, "body is missing")
ask("body-whitespace", b" \r\n\t ", 422, "not valid JSON")
ask("unknown-field", {"question": Q, "admin": True}, 422, "admin: Extra inputs are not permitted")
ask("proto-pollution", b'{"question": "Qui ?", "__proto__": {"admin": true}}', 422, "__proto__")
ask("duplicate-keys", b'{"question": "", "question": "Qui co-pr\\u00e9side le sommet ?"}', 200)
ask("truncated-json", b'{"question": "Qui', 422, "not valid JSON")
ask("trailing-comma", b'{"question": "Qui ?",}', 422, "not valid JSON")
ask("single-quotes", b"{'question': 'Qui ?'}", 422, "not valid JSON")
ask("js-comment", b'{"question": "Qui ?" /* hi */}', 422, "not valid JSON")
ask("trailing-garbage", b'{"question": "Qui ?"} {"question": "x"}', 422, "not valid JSON")
ask("bare-word", b"question=Qui", 422, "not valid JSON")
ask("deep-array", b"[" * 5000 + b"]" * 5000, 400)
ask("deep-object", b'{"question": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3000 + b"}", 400)
ask("invalid-utf8", b'{"question": "Qui \xff\xfe ?"}', 400)
ask("invalid-utf8-overlong", b'{"question": "\xc0\xaf\xc0\xae"}', 400)
# json.loads decodes bytes with "surrogatepass": an encoded surrogate becomes a lone one, refused by name
ask("invalid-utf8-cesu-surrogate", b'{"question": "\xed\xa0\x80"}', 422, "unpaired UTF-16 surrogate")
ask("invalid-utf8-truncated", b'{"question": "\xe2\x82"}', 400)
ask("random-binary", bytes(range(256)) * 4, (400, 422))
ask("utf8-bom", b'\xef\xbb\xbf{"question": "Qui co-pr\xc3\xa9side le sommet ?"}', 200)
# ---- /api/ask: content types and framing ----
body = js({"question": Q})
for ctype, expect in [("text/plain", 422), ("application/x-www-form-urlencoded", 422), ("application/xml", 422),
                      ("multipart/form-data; boundary=xyz", 422), ("application/octet-stream", 422),
                      ("text/html; charset=utf-8", 422), ("application/json; charset=utf-8", 200),
                      ("application/ld+json", 200), ("APPLICATION/JSON", 200), ("application/json;;;", 200)]:
    case(f"ask/content-type={ctype}", request("POST", "/api/ask", body, content_type=ctype), expect)
case("ask/no-content-type", request("POST", "/api/ask", body, content_type=None), 422, "must be a JSON object")
case("ask/json-latin1-body", request("POST", "/api/ask", '{"question": "Qui pr\xe9side ?"}'.encode("latin-1"),
                                     content_type="application/json; charset=latin-1"), 400)
case("ask/json-utf16-body", request("POST", "/api/ask", json.dumps({"question": Q}).encode("utf-16"),
                                    content_type="application/json; charset=utf-16"), (200, 400, 422))
case("ask/gzip-body-not-decoded", request("POST", "/api/ask", gzip.compress(body), {"Content-Encoding": "gzip"}), (400, 422))
case("ask/chunked", request("POST", "/api/ask", chunked(body, 7), {"Transfer-Encoding": "chunked"}, length=False), 200)
case("ask/chunked-over-limit", request("POST", "/api/ask", chunked(js({"question": Q, "history": ["x" * 999] * 80})),
                                       {"Transfer-Encoding": "chunked"}, length=False), 413, "larger than the limit")
case("ask/content-length-huge", request("POST", "/api/ask", body, {"Content-Length": "99999999999"}, length=False),
     413, "larger than the limit")
case("ask/content-length-short", request("POST", "/api/ask", body, {"Content-Length": "5"}, length=False), 422, "not valid JSON")
case("ask/content-length-not-a-number", request("POST", "/api/ask", body, {"Content-Length": "abc"}, length=False),
     400, protocol=True)
case("ask/content-length-negative", request("POST", "/api/ask", body, {"Content-Length": "-5"}, length=False),
     400, protocol=True)
case("ask/expect-100-continue", request("POST", "/api/ask", body, {"Expect": "100-continue"}), 200)
# ---- /api/search ----
search("missing-q", "", 422, "q: Field required")
search("empty-q", "q=", 422, "q is empty")
search("blank-q", "q=%20%09%0A", 422, "q is empty")
search("nul-q", "q=%00%00", 422, "q is empty")
search("nul-inside-q", "q=Modi%00Macron", 200)
search("pct-invalid-utf8", "q=%ff%fe", 200)  # decoded with replacement characters
search("pct-surrogate-bytes", "q=%ED%A0%80", 200)
search("bad-pct-escape", "q=%zz%", 200)
search("100k-q", "q=" + "a" * 100_000, (422, 400), "100000 characters", protocol=True)  # httptools caps the URL
search("html-q", "q=" + quote("<script>alert(1)</script>"), 200)
search("repeated-q", "q=Modi&q=Macron", 200)
for k, expect in [("0", 422), ("-1", 422), ("1000000000", 422), ("5.5", 422), ("true", 422), ("abc", 422), ("", 422),
                  ("5", 200), ("%35", 200)]:
    search(f"k={k}", f"q=Modi&k={k}", expect, "k:" if expect == 422 else "")
search("bad-mode", "q=Modi&mode=fuzzy", 422, "mode: Input should be")
search("unknown-param", "q=Modi&debug=1&__proto__=x", 200)
# ---- /api/documents/{doc_id}: unknown and path-traversal ids ----
for name, path in [
    ("unknown", "/api/documents/nope"),
    ("dotdot", "/api/documents/../../etc/passwd"),
    ("dotdot-deep", "/api/documents/../../../../../../etc/passwd"),
    ("url-encoded", "/api/documents/..%2F..%2Fetc%2Fpasswd"),
    ("url-encoded-dots", "/api/documents/%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
    ("double-encoded", "/api/documents/..%252F..%252Fetc%252Fpasswd"),
    ("backslashes", "/api/documents/..\\..\\etc\\passwd"),
    ("encoded-backslashes", "/api/documents/..%5C..%5Cetc%5Cpasswd"),
    ("nul-encoded", "/api/documents/%00"),
    ("nul-encoded-suffix", f"/api/documents/{DOC_ID}%00.md"),
    ("file-name", f"/api/documents/{DOC_ID}.md"),
    ("absolute-path", "/api/documents/%2Fetc%2Fpasswd"),
    ("file-url", "/api/documents/file:%2F%2F%2Fetc%2Fpasswd"),
    ("index-file", "/api/documents/..%2F..%2Findex%2Fcurrent%2Fmanifest.json"),
    ("pct-invalid-utf8", "/api/documents/%ff%fe"),
    ("html-id", "/api/documents/%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
    ("unicode-id", "/api/documents/" + quote("ｒｔｌ-une-semaine-pour-l-ia")),
    ("case-variant", f"/api/documents/{DOC_ID.upper()}"),
    ("trailing-slash", f"/api/documents/{DOC_ID}/"),
    ("query-injection", f"/api/documents/{DOC_ID}%3Fx=1"),
]:
    case(f"doc/{name}", request("GET", path), 404, must_not_contain=(PASSWD_MARKER, '"text"'))
case("doc/100k-id", request("GET", "/api/documents/" + "a" * 100_000), (404, 400), protocol=True)
case("doc/nul-raw", request("GET", b"/api/documents/a\x00b"), 400, protocol=True)
case("doc/invalid-utf8-raw", request("GET", b"/api/documents/\xff\xfe"), 400, protocol=True)
case("doc/valid", request("GET", f"/api/documents/{DOC_ID}"), 200)
# ---- other paths: no file is ever served from disk except the four widget files ----
for name, path in [("etc-passwd", "/../../etc/passwd"), ("encoded-root", "/%2e%2e/%2e%2e/etc/passwd"),
                   ("double-slash", "//etc/passwd"), ("widget-escape", "/widget.js/../../../etc/passwd"),
                   ("static-escape", "/static/..%2F..%2Fapp.py"), ("dotenv", "/.env"), ("git-config", "/.git/config"),
                   ("index-manifest", "/index/current/manifest.json"), ("documents-file", f"/documents/{DOC_ID}.md"),
                   ("api-root", "/api/"), ("v2", "/v2/chat/completions"), ("ask-suffix", "/api/ask/extra"),
                   ("server-source", "/api/app.py"), ("trailing-slash", "/api/health/"),
                   ("docs-static-dotdot", "/docs-static/../../../../etc/passwd"),
                   ("docs-static-encoded", "/docs-static/..%2F..%2F..%2F..%2Fetc%2Fpasswd"),
                   ("docs-static-dots", "/docs-static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd"),
                   ("docs-static-absolute", "/docs-static//etc/passwd"),
                   ("docs-static-dir", "/docs-static/"), ("docs-static-missing", "/docs-static/nope.js")]:
    case(f"path/{name}", request("GET", path), 404, must_not_contain=(PASSWD_MARKER, "import ", "[core]"))
# ---- wrong methods ----
for method, path in [("GET", "/api/ask"), ("GET", "/v1/chat/completions"), ("GET", "/api/admin/reload"),
                     ("PUT", "/api/ask"), ("DELETE", "/api/ask"), ("PATCH", "/v1/chat/completions"),
                     ("POST", "/api/health"), ("POST", "/api/search"), ("PUT", "/api/documents"),
                     ("PUT", f"/api/documents/{DOC_ID}"), ("POST", "/v1/models"), ("TRACE", "/api/ask"),
                     ("OPTIONS", "/api/ask"), ("POST", "/widget.js"),
                     ("POST", "/docs-static/swagger-ui.css")]:
    case(f"method/{method} {path}", request(method, path, b"{}" if method in ("PUT", "PATCH", "POST") else None), 405,
         "Method Not Allowed")
# The document admin routes do not exist on a server without an admin token (as for reload).
case("admin/POST /api/documents, no token configured", request("POST", "/api/documents", b"{}"), 404, "Not Found")
case("admin/DELETE /api/documents/{id}, no token configured", request("DELETE", f"/api/documents/{DOC_ID}"), 404, "Not Found")
case("admin/DELETE /api/documents/../etc", request("DELETE", "/api/documents/../../etc/passwd"), 404)
case("method/HEAD /api/ask", request("HEAD", "/api/ask"), 405, head=True)
case("method/POST /api/ask/ (trailing slash)", request("POST", "/api/ask/", body), 404, "Not Found")
case("method/BREW /api/ask", request("BREW", "/api/ask"), (405, 400), protocol=True)  # unknown to httptools
case("method/lowercase-get", request("get", "/api/health"), (400, 405), protocol=True)
# ---- headers ----
case("headers/8k-value", request("GET", "/api/health", headers={"X-Big": "a" * 8_000}), 200)
case("headers/64k-value", request("GET", "/api/health", headers={"X-Big": "a" * 64_000}), (200, 400), protocol=True)
case("headers/2000-headers", request("GET", "/api/health", headers={f"X-H{i}": "v" for i in range(2000)}), (200, 400),
     protocol=True)
case("headers/8k-cookie", request("POST", "/api/ask", body, {"Cookie": "s=" + "c" * 8_000}), 200)
case("headers/latin1-bytes", request("GET", "/api/health", headers={"X-Name": b"\xff\xfe\xe9"}), 200)
case("headers/nul-in-value", request("GET", "/api/health", headers={"X-Nul": b"a\x00b"}), 400, protocol=True)
case("headers/no-host", request("GET", "/api/health", host=False), (400, 200), protocol=True)  # h11 400, httptools 200
case("headers/evil-host", request("GET", "/api/health", headers={"Host": "evil.example"}, host=False), 200)
case("headers/two-hosts", request("GET", "/api/health", headers={"Host": "evil.example"}), (200, 400), protocol=True)
case("headers/10k-bearer", request("POST", "/api/admin/reload", b"", {"Authorization": "Bearer " + "t" * 10_000}), 404)
case("headers/accept-xml", request("POST", "/api/ask", body, {"Accept": "application/xml"}), 200)
case("headers/cors-evil-preflight", request("OPTIONS", "/api/ask", headers={
    "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}), 400, "Disallowed CORS origin")
case("headers/cors-null-origin", request("OPTIONS", "/api/ask", headers={
    "Origin": "null", "Access-Control-Request-Method": "POST"}), 400, "Disallowed CORS origin")
case("headers/forwarded-for", request("POST", "/api/ask", body, {"X-Forwarded-For": "1.2.3.4, <script>"}), 200)
case("protocol/garbage-line", b"GARBAGE\r\n\r\n", 400, protocol=True)
case("protocol/http-0.9", b"GET /api/health\r\n\r\n", (400, 200), protocol=True)  # h11 refuses, httptools answers
case("protocol/both-cl-and-te", request("POST", "/api/ask", b"0\r\n\r\n", {"Transfer-Encoding": "chunked",
                                                                           "Content-Length": "5"}, length=False),
     (400, 422), protocol=True)
# ---- admin reload without a configured token ----
for name, auth in [("none", None), ("basic", "Basic YWRtaW46YWRtaW4="), ("bearer-empty", "Bearer "),
                   ("bearer-nul", "Bearer a%00b"), ("bearer-unicode", "Bearer jeton-é")]:
    hdrs = {} if auth is None else {"Authorization": auth.encode("utf-8")}
    case(f"reload/{name}", request("POST", "/api/admin/reload", b"", hdrs), 404)
# ---- OpenAI endpoint garbage ----
chat("messages-missing", {"model": "summit-assistant"}, 422, "messages: Field required")
chat("messages-null", {"messages": None}, 422, "messages: Input should be a valid list")
chat("messages-string", {"messages": "Qui ?"}, 422, "messages: Input should be a valid list")
chat("messages-object", {"messages": {"role": "user", "content": "Qui ?"}}, 422, "messages: Input should be a valid list")
chat("messages-empty", {"messages": []}, 422, "at least 1 item")
chat("messages-201", {"messages": [user("a")] * 201}, 422, "at most 200 items")
chat("message-string", {"messages": ["Qui ?"]}, 422, "messages.0")
chat("message-null", {"messages": [None]}, 422, "messages.0")
chat("role-missing", {"messages": [{"content": "Qui ?"}]}, 422, "messages.0.role: Field required")
chat("role-wizard", {"messages": [{"role": "wizard", "content": "Qui ?"}]}, 422, "messages.0.role")
chat("role-uppercase", {"messages": [{"role": "USER", "content": "Qui ?"}]}, 422, "messages.0.role")
chat("role-empty", {"messages": [{"role": "", "content": "Qui ?"}]}, 422, "messages.0.role")
chat("role-number", {"messages": [{"role": 1, "content": "Qui ?"}]}, 422, "messages.0.role")
chat("only-system", {"messages": [{"role": "system", "content": "Tu es un pirate."}]}, 422, "no user message")
chat("only-assistant", {"messages": [{"role": "assistant", "content": "Modi [1]"}]}, 422, "no user message")
chat("only-tool", {"messages": [{"role": "tool", "content": "Qui ?", "tool_call_id": "x"}]}, 422, "no user message")
chat("content-number", {"messages": [user(5)]}, 422, "messages.0.content")
chat("content-object", {"messages": [user({"text": "Qui ?"})]}, 422, "messages.0.content")
chat("content-null", {"messages": [user(None)]}, 422, "question is empty")
chat("content-empty-list", {"messages": [user([])]}, 422, "question is empty")
chat("part-image", {"messages": [user([{"type": "image_url", "image_url": {"url": "http://127.0.0.1/x.png"}}])]}, 422,
     "only text content")
chat("part-audio", {"messages": [user([{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}])]}, 422,
     "only text content")
chat("part-text-and-image", {"messages": [user([{"type": "text", "text": Q}, {"type": "image_url", "image_url": {}}])]}, 422,
     "only text content")
chat("part-no-type", {"messages": [user([{"text": Q}])]}, 422, "type: Field required")
chat("part-text-missing", {"messages": [user([{"type": "text"}])]}, 422, "a text part has no 'text'")
chat("part-text-number", {"messages": [user([{"type": "text", "text": 5}])]}, 422, "text: Input should be a valid string")
chat("part-string", {"messages": [user(["Qui ?"])]}, 422, "messages.0.content")
chat("part-surrogate", {"messages": [user([{"type": "text", "text": "\ud800"}])]}, 422, "unpaired UTF-16 surrogate")
chat("user-surrogate", {"messages": [user("Qui \udc00 ?")]}, 422, "unpaired UTF-16 surrogate")
chat("system-surrogate-ignored", {"messages": [{"role": "system", "content": "\udfff"}, user(Q)]}, 200)
chat("blank-user", {"messages": [user(" \n ")]}, 422, "question is empty")
chat("user-60k", {"messages": [user("a" * 60_000)]}, 422, "60000 characters")
chat("user-100k", {"messages": [user("a" * 100_000)]}, 413, "larger than the limit")
chat("long-chat", {"messages": [user("x" * 300), {"role": "assistant", "content": "y"}] * 50 + [user(Q)]}, 200)
chat("history-items-over-1000", {"messages": [user("é" * 5000), user(Q)]}, 200)
chat("model-null", {"model": None, "messages": [user(Q)]}, 422, "model")
chat("model-object", {"model": {"id": "gpt"}, "messages": [user(Q)]}, 422, "model")
chat("stream-string-yes", {"messages": [user(Q)], "stream": "yes"}, 200)
chat("stream-number", {"messages": [user(Q)], "stream": 5}, 422, "stream")
chat("stream-null", {"messages": [user(Q)], "stream": None}, 422, "stream")
chat("extra-params-ignored", {"messages": [user(Q)], "temperature": "hot", "n": -3, "tools": [{"x": 1}],
                              "max_tokens": 10**12}, 200)
chat("html-content", {"messages": [user("<img src=x onerror=alert(1)> Qui co-préside le sommet ?")]}, 200)
chat("body-array", [{"role": "user", "content": Q}], 422, "must be a JSON object")
chat("invalid-json", b'{"messages": [', 422, "not valid JSON")
chat("invalid-utf8", b'{"messages": [{"role": "user", "content": "\xc3\x28"}]}', 400)
case("chat/text-plain", request("POST", "/v1/chat/completions", js({"messages": [user(Q)]}), content_type="text/plain"), 422,
     "must be a JSON object")


# ---- running a case ----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def send(base_url: str, raw: bytes, *, head: bool = False, timeout: float = 120) -> Reply:
    """Write the bytes to a fresh connection; parse the reply with the standard library (which
    skips a 100 Continue and undoes chunked encoding)."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (413) and closed before reading everything: read the answer
        response = http.client.HTTPResponse(sock, method="HEAD" if head else "GET")
        response.begin()
        body = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


RESULTS: dict[str, int] = {}
REFUSED_BY_UVICORN: set[str] = set()  # answered by the HTTP parser, not the app


def check_reply(c: Case, r: Reply) -> None:
    assert r.status < 500, f"{c.id}: {r.status} {r.text[:300]}"
    assert r.status in c.expect, f"{c.id}: expected {c.expect}, got {r.status} {r.text[:300]}"
    for marker in TRACE_MARKERS + c.must_not_contain:
        assert marker not in r.text, f"{c.id}: {marker!r} in the body: {r.text[:300]}"
    if c.protocol and r.headers.get("content-type", "").startswith("text/plain"):
        assert r.status == 400 and r.text == "Invalid HTTP request received."  # uvicorn's own refusal
        REFUSED_BY_UVICORN.add(c.id)
        return
    assert r.headers.get("x-content-type-options") == "nosniff", c.id
    ctype = r.headers.get("content-type", "")
    if c.head:
        assert ctype.startswith("application/json") and r.body == b""
        return
    if ctype.startswith("text/event-stream"):  # a streamed chat completion
        assert r.status == 200 and r.text.endswith("data: [DONE]\n\n")
        return
    assert ctype.startswith("application/json"), f"{c.id}: {ctype} {r.text[:200]}"
    payload = json.loads(r.body)
    if r.status >= 400:
        detail = payload["detail"]
        assert isinstance(detail, str) and detail.strip(), c.id
        assert c.fragment in detail, f"{c.id}: {c.fragment!r} not in {detail!r}"
        if r.status == 429:
            assert r.headers["retry-after"].isdigit()
    elif isinstance(payload, dict) and "answer" in payload:
        assert isinstance(payload["found"], bool) and isinstance(payload["answer"], str)


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_hostile_request(live_server: LiveServer, c: Case) -> None:
    r = send(live_server.url, c.raw, head=c.head)
    RESULTS[c.id] = r.status
    check_reply(c, r)


def test_server_is_still_healthy_after_the_table(live_server: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs after the table (file order): health is 200, a normal question still answers, and no
    request of the table ever reached the catch-all 500 handler."""
    health = send(live_server.url, request("GET", "/api/health"))
    assert health.status == 200 and json.loads(health.body)["status"] == "ok"
    answer = send(live_server.url, request("POST", "/api/ask", js({"question": CO_CHAIR_FR})))
    assert answer.status == 200
    assert "Narendra Modi" in json.loads(answer.body)["answer"]
    assert live_server.app.state.internal_errors == 0
    assert len(CASES) >= 100 and len({c.id for c in CASES}) == len(CASES)
    tally = Counter(f"{s // 100}xx" for s in RESULTS.values())
    with capsys.disabled():
        print(f"\nhostile requests: {len(CASES)} cases in the table, {len(RESULTS)} sent this run "
              f"({dict(sorted(tally.items()))}; {len(REFUSED_BY_UVICORN)} refused by uvicorn's HTTP parser with "
              f"a plain-text 400, the rest answered by the app in JSON); 5xx: {tally.get('5xx', 0)}")


def test_abandoned_requests_leave_the_server_clean(live_server: LiveServer, caplog: pytest.LogCaptureFixture) -> None:
    """Clients that hang up half way: a body cut short, a question asked and never read, a
    stream dropped after its first chunk. None of them may reach the 500 handler or log an error."""
    import logging

    caplog.set_level(logging.ERROR)
    url = urlsplit(live_server.url)
    errors_before = live_server.app.state.internal_errors
    ask_body = js({"question": CO_CHAIR_FR})
    stream_body = js({"stream": True, "messages": [user(CO_CHAIR_FR)]})
    for raw in (
        request("POST", "/api/ask", ask_body[:10], {"Content-Length": str(len(ask_body))}, length=False),  # cut short
        request("POST", "/api/ask", ask_body, {"Connection": "keep-alive"}),  # never read
        request("POST", "/v1/chat/completions", stream_body),  # the first chunk only
    ):
        with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
            sock.sendall(raw)
            if b"stream" in raw:
                assert sock.recv(64).startswith(b"HTTP/1.1 200")
    for _ in range(3):  # the server is still whole
        r = send(live_server.url, request("POST", "/api/ask", ask_body))
        assert r.status == 200 and "Narendra Modi" in json.loads(r.body)["answer"]
    assert live_server.app.state.internal_errors == errors_before
    assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR], caplog.text


# ---- limits and headers not covered by test_api.py ---------------------------------------------

ALLOWED = "https://partner.example"


def test_refusals_made_by_middleware_carry_cors_headers(make_client: Callable[..., TestClient]) -> None:
    """A cross-origin widget must be able to read 413 and 429 replies, and Retry-After."""
    client = make_client(cors_origins=[ALLOWED], rate_limit_per_minute=2, max_body_bytes=2048)
    origin = {"Origin": ALLOWED}
    big = client.post("/api/ask", json={"question": CO_CHAIR_FR, "history": ["x" * 900] * 3}, headers=origin)
    assert big.status_code == 413 and big.headers["access-control-allow-origin"] == ALLOWED
    assert client.post("/api/ask", json={"question": CO_CHAIR_FR}, headers=origin).status_code == 200
    limited = client.post("/api/ask", json={"question": CO_CHAIR_FR}, headers=origin)
    assert limited.status_code == 429 and limited.headers["access-control-allow-origin"] == ALLOWED
    assert "retry-after" in limited.headers["access-control-expose-headers"].lower()
    assert limited.headers["x-content-type-options"] == "nosniff"
    assert set(limited.json()) == {"detail"}


def test_rate_limit_is_per_client_and_covers_bad_requests(make_client: Callable[..., TestClient]) -> None:
    """Hostile requests count against the limit too (else garbage could be sent for free), and
    one client being limited does not limit another."""
    client = make_client(rate_limit_per_minute=3)
    statuses = [client.post("/api/ask", content=b"{nope", headers={"Content-Type": "application/json"}).status_code
                for _ in range(3)]
    assert statuses == [422, 422, 422]
    r = client.post("/api/ask", json={"question": CO_CHAIR_FR})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    other = TestClient(client.app, client=("10.0.0.2", 50000))
    assert other.post("/api/ask", json={"question": CO_CHAIR_FR}).status_code == 200


def test_error_bodies_never_echo_huge_input(client: TestClient) -> None:
    """A refused 100 kB question is not sent back whole in the error message."""
    r = client.get("/api/search", params={"q": "x" * 50_000})
    assert r.status_code == 422 and len(r.content) < 1000

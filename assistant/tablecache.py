"""Decoded lookup tables kept on disk between processes, so that a cold `summit ask` answers in
about two seconds instead of four.

Three tables take most of a cold start after the index itself: the USE tokenizer's piece and
prefix tables (built in pure Python from its sentencepiece model), simplemma's lemma dictionaries
(LZMA front-coded streams) and the FreeDict dictionaries (dictd files). Each is plain data
(dict, list, tuple, str, bytes, numbers), written once with ``marshal`` and read back in a tenth
of the time it takes to build.

An entry is keyed by what it was built from: the source files' paths, sizes and modification
times, and the producing package's version. A stale, truncated or foreign entry is rebuilt, never
trusted: the file holds a header with that key and a CRC of the payload. Writes go to a temporary
file renamed into place, so concurrent processes never read half an entry.

Where: ``SUMMIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/summit-assistant``, else
``~/.cache/summit-assistant``. ``SUMMIT_CACHE_DIR=""`` turns it off. When the folder cannot be
written the tables are simply built every time.
"""

from __future__ import annotations

import logging
import marshal
import os
import tempfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("summit.cache")

FORMAT = 1
_MAGIC = b"summit-table\n"


def cache_dir() -> Path | None:
    """The cache folder, or None when caching is off (SUMMIT_CACHE_DIR="")."""
    configured = os.environ.get("SUMMIT_CACHE_DIR")
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "summit-assistant"


def source_key(paths: Iterable[Path], version: str) -> str:
    """What an entry was built from: each file's resolved path, size and mtime, and a version."""
    parts = [f"format={FORMAT}", f"version={version}"]
    for path in paths:
        st = Path(path).stat()
        parts.append(f"{Path(path).resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(parts)


def _read(path: Path, key: str) -> Any:
    blob = path.read_bytes()
    if not blob.startswith(_MAGIC):
        raise ValueError("not a table file")
    header_end = blob.index(b"\n\n", len(_MAGIC))
    header = blob[len(_MAGIC) : header_end].decode("utf-8")
    stored_key, _, crc = header.rpartition("\ncrc=")
    payload = blob[header_end + 2 :]
    if stored_key != key:
        raise ValueError("built from other sources")
    if int(crc) != zlib.crc32(payload):
        raise ValueError("damaged")
    return marshal.loads(payload)


def _write(path: Path, key: str, value: Any) -> None:
    payload = marshal.dumps(value)
    header = f"{key}\ncrc={zlib.crc32(payload)}".encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + header + b"\n\n" + payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached(name: str, key: str, build: Callable[[], Any]) -> Any:
    """``build()``'s value, from the cache when an entry with this name and key exists.

    ``build`` must return plain data that ``marshal`` can write; on any cache problem (off,
    unreadable, unwritable, stale) the value is built and returned all the same."""
    folder = cache_dir()
    if folder is None:
        return build()
    path = folder / f"{name}.table"
    try:
        return _read(path, key)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, EOFError, TypeError) as exc:
        log.debug("rebuilding cached table %s: %s", name, exc)
    value = build()
    try:
        _write(path, key, value)
    except (OSError, ValueError) as exc:  # read-only home, full disk, unmarshallable value
        log.debug("cannot cache table %s in %s: %s", name, folder, exc)
    return value

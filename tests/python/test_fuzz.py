"""Property-based fuzzing of the whole public Python API with Hypothesis (Debian's python3-hypothesis):
forward, backward, gdn_forward, gdn_backward, level, num_levels, buckets, decay_mask and Decoder.

Each call must honour the contract of issue 11 and nothing more: either a result of the right
shape with finite values, or ValueError / TypeError whose message starts with the name of the
offending argument (never pybind11's "incompatible function arguments" dump). Any other exception
fails the test; a crash kills the process and fails the CTest test that runs this file.

Budget: every test runs at most MAX_EXAMPLES = 150 examples (LOGLINEAR_FUZZ_EXAMPLES overrides it),
with derandomize=True: the examples are a fixed function of the test's code, so CI is reproducible
and a failure recurs on the next run. No example database is written (Hypothesis's Unicode cache
goes to $TMPDIR/loglinear-hypothesis unless HYPOTHESIS_STORAGE_DIRECTORY says otherwise). Sizes
stay small (T <= 40, every other dimension <= 4; hostile sizes are beyond any machine: 2**40 and
up), so the whole file runs in well under a minute on 2 cores (about 15 s measured).
For a longer, randomised search:
    LOGLINEAR_FUZZ_EXAMPLES=5000 LOGLINEAR_FUZZ_RANDOM=1 python3 -m unittest test_fuzz
Inputs it finds that crash go into test_hostile_input.py as explicit regression tests."""
import os
import re
import tempfile
import unittest

import numpy as np

# Hypothesis caches Unicode tables under ./.hypothesis; keep them out of the source tree.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "loglinear-hypothesis"))
try:
    from hypothesis import HealthCheck, given, settings, strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as e:  # a declared dependency: fail loudly rather than skip
    raise ImportError("test_fuzz needs python3-hypothesis (scripts/setup.sh installs it)") from e

import loglinear

MAX_EXAMPLES = int(os.environ.get("LOGLINEAR_FUZZ_EXAMPLES", 150))
FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                derandomize=not os.environ.get("LOGLINEAR_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])

# ---- the contract ---------------------------------------------------------------------------


def call(fn, names, *args, **kwargs):
    """fn(*args, **kwargs), or None if it raised ValueError / TypeError naming one of `names`."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert "incompatible function arguments" not in msg, f"pybind11 overload dump: {msg}"
        assert re.match(r"^(%s):" % "|".join(re.escape(n) for n in names), msg), \
            f"{type(e).__name__} does not start with an argument name in {names}: {msg!r}"
        return None


def assert_finite_array(a, shape, what):
    assert isinstance(a, np.ndarray), f"{what}: {type(a)}"
    assert a.shape == tuple(shape), f"{what}: shape {a.shape}, expected {tuple(shape)}"
    assert a.dtype in (np.float32, np.float64), f"{what}: dtype {a.dtype}"
    assert np.isfinite(a).all(), f"{what}: non-finite values"


FORWARD_NAMES = ("q", "k", "v", "g", "lam", "form", "chunk_size", "device", "q, v")
BACKWARD_NAMES = FORWARD_NAMES + ("do",)
GDN_FORWARD_NAMES = ("q", "k", "v", "g", "beta", "lam", "form", "chunk_size", "q, v")
GDN_BACKWARD_NAMES = GDN_FORWARD_NAMES + ("do",)

# ---- strategies -----------------------------------------------------------------------------

HUGE = [2**40, 2**62, 2**63 - 1, 2**63, 2**64, 2**100, -2**63, -2**64, -2**100]
# Integer arguments: small values, powers of two, extremes, anything in a wide range, and
# objects that are not ints.
ints = st.one_of(st.integers(-3, 70), st.sampled_from(HUGE), st.integers(-2**70, 2**70),
                 st.builds(lambda k: 2**k, st.integers(0, 80)))
not_ints = st.sampled_from([None, 1.0, 2.5, float("nan"), "8", b"8", True, False, [4], (4,), {},
                            np.float64(4.0), np.array([4]), np.bool_(True), 1 + 0j, object()])
int_args = st.one_of(ints, not_ints, st.sampled_from([np.int64(8), np.uint8(2), np.array(16)]))
text_args = st.one_of(st.sampled_from(["naive", "recurrent", "chunked", "cpu", "", "NAIVE", "chunked ",
                                       "\x00", "\ud800"]),
                      st.text(max_size=8), st.sampled_from([None, 0, b"chunked", ["naive"]]))
forms = st.one_of(st.sampled_from(["naive", "recurrent", "chunked"]), text_args)
devices = st.one_of(st.just("cpu"), text_args.filter(lambda s: s != "cuda"))
chunk_sizes = st.one_of(st.sampled_from([1, 2, 4, 8, 64]), int_args)

DTYPES = [np.float16, np.float32, np.float64, np.longdouble, np.int8, np.int16, np.int32, np.int64,
          np.uint8, np.uint16, np.uint64, np.bool_, np.complex64, object, "U3", "S2", "M8[s]", "m8[s]",
          [("a", "f8")]]
# Objects that are not arrays of numbers, or arrays of the wrong kind.
junk = st.one_of(
    st.sampled_from([None, "abc", b"xy", {}, set(), object(), [[1.0], [2.0, 3.0]], [], [[]], 3.0, 7,
                     float("nan"), np.float64(1.0), np.array(2.0), range(3), iter([1.0])]),
    st.sampled_from([np.array([None, 1.0], dtype=object), np.zeros((1, 2, 1, 1), dtype=object),
                     np.zeros(2, dtype=[("a", "f8")]), np.zeros((2, 2), dtype="M8[s]")]),
    hnp.arrays(dtype=st.one_of(hnp.scalar_dtypes(), st.just(np.dtype("U3"))),
               shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=3)),
)


@st.composite
def problems(draw):
    """Valid operator inputs (small sizes), in float32 or float64."""
    B, T = draw(st.integers(1, 2)), draw(st.integers(1, 40))
    G = draw(st.integers(1, 2))
    H, K, V = G * draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    L = loglinear.num_levels(T) + draw(st.integers(0, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = {"q": rng.standard_normal((B, T, G, K)), "k": rng.standard_normal((B, T, G, K)),
         "v": rng.standard_normal((B, T, H, V)), "g": -rng.uniform(0, 3, (B, T, H)),
         "lam": rng.standard_normal((B, T, H, L)), "do": rng.standard_normal((B, T, H, V))}
    return {n: a.astype(dtype) for n, a in x.items()}


def mutate(draw, a):
    """One hostile variant of array `a` (or `a` unchanged)."""
    kind = draw(st.sampled_from(["same", "nan", "inf", "positive", "ndim+", "ndim-", "shape", "empty",
                                 "dtype", "fortran", "strided", "broadcast", "byteswap", "list", "0-d",
                                 "junk", "huge-int"]))
    a = np.array(a)
    idx = tuple(draw(st.integers(0, max(s - 1, 0))) for s in a.shape)
    if kind == "same":
        return a
    if kind in ("nan", "inf", "positive") and a.size:
        a[idx] = {"nan": np.nan, "inf": -np.inf, "positive": 0.5}[kind]
        return a
    if kind == "ndim+":
        return a[None]
    if kind == "ndim-":
        return a[0] if a.ndim else a
    if kind in ("shape", "empty") and a.ndim == 0:
        return a
    if kind == "shape":  # one more or one fewer along an axis
        axis = draw(st.integers(0, a.ndim - 1))
        if draw(st.booleans()):
            extra = list(a.shape)
            extra[axis] = 1
            return np.concatenate([a, np.zeros(extra, a.dtype)], axis=axis)
        return a.take(range(max(a.shape[axis] - 1, 0)), axis=axis)
    if kind == "empty":
        return a.take([], axis=draw(st.integers(0, a.ndim - 1)))
    if kind == "dtype":
        with np.errstate(all="ignore"):
            return a.astype(draw(st.sampled_from(DTYPES)))
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided":
        b = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        b[..., ::2] = a
        return b[..., ::2]
    if kind == "broadcast":
        return np.broadcast_to(a[(slice(0, 1),) * a.ndim] if a.size else a, a.shape)
    if kind == "byteswap":
        return a.astype(a.dtype.newbyteorder("S"))
    if kind == "list":
        return a.tolist()
    if kind == "0-d":
        return a.flat[0] if a.size else np.float64(0.0)
    if kind == "huge-int":
        return np.full(a.shape, 2**53 + 1, dtype=np.int64)
    return draw(junk)


@st.composite
def hostile_calls(draw):
    """Inputs of forward/backward where some arguments are hostile."""
    x = draw(problems())
    for name in x:
        if draw(st.integers(0, 3)) == 0:
            x[name] = mutate(draw, x[name])
    return x


@st.composite
def gdn_hostile_calls(draw):
    """Inputs of gdn_forward/gdn_backward (q, k, v, g, beta, lam, do) where some are hostile. The
    valid ones are what the model feeds: L2-normalised keys and beta in [0, 1]."""
    x = draw(problems())
    dtype = x["q"].dtype
    k = x["k"].astype(np.float64)
    x["k"] = (k / np.maximum(np.linalg.norm(k, axis=-1, keepdims=True), 1e-3)).astype(dtype)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x["beta"] = rng.uniform(0, 1, x["g"].shape).astype(dtype)
    for name in x:
        if draw(st.integers(0, 3)) == 0:
            x[name] = mutate(draw, x[name])
    return x


def bounded_keys(k):
    """True if every key has |k|^2 <= 2: every transition I - beta k k^T (beta in [0, 1]) then has
    eigenvalues in [-1, 1] and the outputs stay finite. A mutated key (uint8 of -1 is 255) may
    legitimately make them overflow."""
    kk = np.asarray(k, dtype=np.float64)
    return kk.size == 0 or float(np.max(np.sum(kk * kk, axis=-1))) <= 2


def expected_shapes(x):
    return {n: np.shape(x[n]) for n in ("q", "k", "v", "g", "lam")}


# ---- the tests ------------------------------------------------------------------------------


class FuzzTest(unittest.TestCase):
    @FUZZ
    @given(x=hostile_calls(), form=forms, chunk_size=chunk_sizes, device=devices)
    def test_forward(self, x, form, chunk_size, device):
        args = [x[n] for n in ("q", "k", "v", "g", "lam")]
        o = call(loglinear.forward, FORWARD_NAMES, *args, form=form, chunk_size=chunk_size, device=device)
        if o is not None:
            assert_finite_array(o, np.shape(x["v"]), "o")

    @FUZZ
    @given(x=hostile_calls(), form=forms, chunk_size=chunk_sizes)
    def test_backward(self, x, form, chunk_size):
        args = [x[n] for n in ("q", "k", "v", "g", "lam", "do")]
        grads = call(loglinear.backward, BACKWARD_NAMES, *args, form=form, chunk_size=chunk_size)
        if grads is not None:
            self.assertEqual(sorted(grads), ["dg", "dk", "dlam", "dq", "dv"])
            for n, shape in expected_shapes(x).items():
                assert_finite_array(grads["d" + n], shape, "d" + n)

    @FUZZ
    @given(x=gdn_hostile_calls(), form=forms, chunk_size=chunk_sizes)
    def test_gdn_forward(self, x, form, chunk_size):
        args = [x[n] for n in ("q", "k", "v", "g", "beta", "lam")]
        o = call(loglinear.gdn_forward, GDN_FORWARD_NAMES, *args, form=form, chunk_size=chunk_size)
        if o is not None:
            self.assertEqual(o.shape, np.shape(x["v"]))
            if bounded_keys(x["k"]):
                assert_finite_array(o, np.shape(x["v"]), "o")

    @FUZZ
    @given(x=gdn_hostile_calls(), form=forms, chunk_size=chunk_sizes)
    def test_gdn_backward(self, x, form, chunk_size):
        args = [x[n] for n in ("q", "k", "v", "g", "beta", "lam", "do")]
        grads = call(loglinear.gdn_backward, GDN_BACKWARD_NAMES, *args, form=form, chunk_size=chunk_size)
        if grads is not None:
            self.assertEqual(sorted(grads), ["dbeta", "dg", "dk", "dlam", "dq", "dv"])
            shapes = dict(expected_shapes(x), beta=np.shape(x["beta"]))
            for n, shape in shapes.items():
                self.assertEqual(grads["d" + n].shape, shape)
                if bounded_keys(x["k"]):
                    assert_finite_array(grads["d" + n], shape, "d" + n)

    @FUZZ
    @given(q=junk, k=junk, v=junk, g=junk, lam=junk, chunk_size=chunk_sizes)
    def test_forward_of_arbitrary_arrays_and_objects(self, q, k, v, g, lam, chunk_size):
        o = call(loglinear.forward, FORWARD_NAMES, q, k, v, g, lam, chunk_size=chunk_size)
        if o is not None:
            assert_finite_array(o, np.shape(v), "o")

    @FUZZ
    @given(x=hostile_calls(), form=st.sampled_from(["naive", "recurrent", "chunked"]),
           chunk_size=st.one_of(st.builds(lambda k: 2**k, st.integers(0, 70)), st.sampled_from(HUGE)))
    def test_forms_agree_for_any_accepted_chunk_size(self, x, form, chunk_size):
        # Beyond the contract, the cheapest correctness check there is: an accepted chunk size
        # (clamped or not) gives what the naive form gives.
        args = [x[n] for n in ("q", "k", "v", "g", "lam")]
        o = call(loglinear.forward, FORWARD_NAMES, *args, form=form, chunk_size=chunk_size)
        if o is not None:
            ref = loglinear.forward(*args, form="naive")
            tol = 1e-3 if o.dtype == np.float32 else 1e-10  # float32 sums in another order
            np.testing.assert_allclose(o, ref, rtol=0, atol=tol * max(1.0, np.abs(ref).max()))

    @FUZZ
    @given(t=int_args, s=int_args)
    def test_level_num_levels_buckets(self, t, s):
        lv = call(loglinear.level, ("t", "s", "level(t, s)"), t, s)
        if lv is not None:
            self.assertEqual(lv, (int(t) ^ int(s)).bit_length())
        n = call(loglinear.num_levels, ("T", "num_levels(T)"), t)
        if n is not None:
            self.assertEqual(n, (int(t) - 1).bit_length() + 1)
        b = call(loglinear.buckets, ("t", "buckets(t)"), t)
        if b is not None:  # the buckets partition [0, t]
            self.assertEqual(sum(e - s0 for _, s0, e in b), int(t) + 1)

    @FUZZ
    @given(x=hostile_calls(), junk_g=junk, use_junk=st.booleans())
    def test_decay_mask(self, x, junk_g, use_junk):
        def one_head(a, rank):  # [T] or [T,L] of the first head, or `a` itself if it has none
            try:
                arr = np.asarray(a)
            except ValueError:  # ragged lists
                return a
            return arr[0, :, 0] if arr.ndim == rank and arr.size else a
        g = junk_g if use_junk else one_head(x["g"], 3)
        lam = one_head(x["lam"], 4)
        W = call(loglinear.decay_mask, ("g", "lam"), g, lam)
        if W is not None:
            T = np.shape(g)[0]
            assert_finite_array(W, (T, T), "W")

    @FUZZ
    @given(sizes=st.one_of(
               st.builds(lambda B, G, m, K, V: [B, G * m, G, K, V], *[st.integers(1, 3)] * 5),  # valid
               # Sizes a machine can hold stay tiny (a legitimate Decoder(1, 1, 1, 2**15, 2**15)
               # holds 8 GiB per level); hostile ones are beyond any machine, or not ints at all.
               st.lists(st.one_of(st.integers(-2, 4), st.sampled_from(HUGE), not_ints), min_size=5, max_size=5)),
           data=st.data())
    def test_decoder(self, sizes, data):
        dec = call(loglinear.Decoder, ("B", "H", "G", "K", "V", "Decoder"), *sizes)
        if dec is None:
            return
        B, H, G, K, V = (int(s) for s in sizes)
        rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
        for _ in range(data.draw(st.integers(0, 4))):
            L = loglinear.num_levels(dec.tokens + 1) + data.draw(st.integers(-1, 1))
            tok = {"q_t": rng.standard_normal((B, G, K)), "k_t": rng.standard_normal((B, G, K)),
                   "v_t": rng.standard_normal((B, H, V)), "g_t": -rng.uniform(0, 3, (B, H)),
                   "lam_t": rng.standard_normal((B, H, max(L, 0)))}
            for n in tok:
                if data.draw(st.integers(0, 4)) == 0:
                    tok[n] = mutate(data.draw, tok[n])
            before = dec.tokens
            o = call(dec.step, tuple(tok), *tok.values())
            if o is None:
                self.assertEqual(dec.tokens, before)  # a refused token leaves the state alone
            else:
                assert_finite_array(o, (B, H, V), "o_t")
                self.assertEqual(dec.tokens, before + 1)
        self.assertEqual(dec.state().shape[:2], (B, H))


if __name__ == "__main__":
    unittest.main()

"""The Python module against a NumPy implementation written here from the definition (SPEC §3):
o_t = sum_{s<=t} lam_t[level(t,s)] exp(G_t - G_s) (q_t . k_s) v_s, with level(t,s) = bit_length(t^s).
Gradients are checked against central differences of that NumPy oracle.

Random inputs are reproducible: every test draws from np.random.default_rng(seed) with the seed
printed on stderr and attached to failure messages. The seed is LOGLINEAR_TEST_SEED when set in the
environment, otherwise a fixed default, e.g.  LOGLINEAR_TEST_SEED=123 python3 -m unittest test_module"""
import os
import pickle
import re
import sys
import unittest
import zlib

import numpy as np

import loglinear

DEFAULT_SEED = 20250601
SEED = int(os.environ.get("LOGLINEAR_TEST_SEED", DEFAULT_SEED))


def oracle(q, k, v, g, lam):
    B, T, G, K = q.shape
    H = v.shape[2]
    o = np.zeros(v.shape)
    for b in range(B):
        for h in range(H):
            gr = h // (H // G)
            Gc = np.cumsum(g[b, :, h])
            for t in range(T):
                for s in range(t + 1):
                    lev = (t ^ s).bit_length()
                    w = lam[b, t, h, lev] * np.exp(Gc[t] - Gc[s]) * (q[b, t, gr] @ k[b, s, gr])
                    o[b, t, h] += w * v[b, s, h]
    return o


def random_inputs(rng, B=2, T=13, H=4, G=2, K=3, V=5, dtype=np.float64):
    L = loglinear.num_levels(T) + 1
    q = rng.standard_normal((B, T, G, K)) / np.sqrt(K)
    k = rng.standard_normal((B, T, G, K)) / np.sqrt(K)
    v = rng.standard_normal((B, T, H, V))
    g = -rng.uniform(0.05, 1.0, (B, T, H))
    lam = rng.standard_normal((B, T, H, L))
    return [x.astype(dtype) for x in (q, k, v, g, lam)]


class ModuleTest(unittest.TestCase):
    longMessage = True

    @classmethod
    def setUpClass(cls):
        print(f"test_module: random seed {SEED} (rerun with LOGLINEAR_TEST_SEED={SEED})", file=sys.stderr)

    def setUp(self):
        # One generator per test, seeded from SEED and the test's name: a test's inputs do not
        # depend on which other tests ran before it, and each one can be rerun alone.
        self.rng = np.random.default_rng([SEED, zlib.crc32(self.id().encode())])
        self.seed_note = f"[random inputs: LOGLINEAR_TEST_SEED={SEED}]"

    def _formatMessage(self, msg, standardMsg):
        # Every self.assert* failure names the seed (np.testing calls pass seed_note in err_msg).
        return f"{super()._formatMessage(msg, standardMsg)} {self.seed_note}"

    def test_levels(self):
        self.assertEqual(loglinear.num_levels(1), 1)
        self.assertEqual(loglinear.num_levels(1000), 11)
        for t in range(40):
            for s in range(t + 1):
                self.assertEqual(loglinear.level(t, s), (t ^ s).bit_length())
        self.assertEqual(loglinear.buckets(6), [(0, 6, 7), (2, 4, 6), (3, 0, 4)])

    def test_forms_match_the_numpy_definition(self):
        for T in (1, 2, 7, 13, 33):
            q, k, v, g, lam = random_inputs(self.rng, T=T)
            ref = oracle(q, k, v, g, lam)
            for form in ("naive", "recurrent", "chunked"):
                for C in (1, 4, 64):
                    o = loglinear.forward(q, k, v, g, lam, form=form, chunk_size=C)
                    # float64 on both sides, same sums in another order: a few ulps.
                    np.testing.assert_allclose(o, ref, rtol=0, atol=1e-12 * np.abs(ref).max(),
                                               err_msg=f"{form} C={C} T={T} {self.seed_note}")

    def test_float32_is_close_to_float64(self):
        q, k, v, g, lam = random_inputs(self.rng, T=40)
        ref = loglinear.forward(q, k, v, g, lam)
        o32 = loglinear.forward(*[x.astype(np.float32) for x in (q, k, v, g, lam)])
        self.assertEqual(o32.dtype, np.float32)
        np.testing.assert_allclose(o32, ref, rtol=0, atol=1e-5 * np.abs(ref).max(), err_msg=self.seed_note)

    def test_gradients_match_finite_differences_of_the_oracle(self):
        q, k, v, g, lam = random_inputs(self.rng, B=1, T=9, H=2, G=1, K=2, V=3)
        do = self.rng.standard_normal(v.shape)
        inputs = {"q": q, "k": k, "v": v, "g": g, "lam": lam}
        for form in ("naive", "recurrent", "chunked"):
            grads = loglinear.backward(q, k, v, g, lam, do, form=form, chunk_size=2)
            for name, x in inputs.items():
                d = grads["d" + name]
                self.assertEqual(d.shape, x.shape)
                for idx in list(np.ndindex(x.shape))[::3]:
                    saved = x[idx]
                    x[idx] = saved + 1e-6
                    up = np.sum(do * oracle(q, k, v, g, lam))
                    x[idx] = saved - 1e-6
                    down = np.sum(do * oracle(q, k, v, g, lam))
                    x[idx] = saved
                    numeric = (up - down) / 2e-6
                    self.assertLess(abs(d[idx] - numeric), 1e-6 * max(1.0, abs(numeric)),
                                    f"{form} d{name}{idx}: {d[idx]} vs {numeric}")

    def test_non_contiguous_arrays_are_copied_not_misread(self):
        q, k, v, g, lam = random_inputs(self.rng, T=11)
        ref = loglinear.forward(q, k, v, g, lam)
        # Same values, Fortran order and a strided slice of a bigger array.
        big = np.zeros((2, 11, 4, 10))
        big[..., ::2] = v
        self.assertFalse(big[..., ::2].flags.c_contiguous)
        o = loglinear.forward(np.asfortranarray(q), k, big[..., ::2], g, lam)
        np.testing.assert_array_equal(o, ref, err_msg=self.seed_note)

    def test_errors_arrive_as_value_error_with_the_cpp_message(self):
        q, k, v, g, lam = random_inputs(self.rng, T=9)
        with self.assertRaisesRegex(ValueError, r"lam: expected shape \[B,T,H,L\] = \[2,9,4,L\] with L >= num_levels\(9\) = 5"):
            loglinear.forward(q, k, v, g, lam[..., :4])
        with self.assertRaisesRegex(ValueError, "g: expected log-decay values <= 0"):
            loglinear.forward(q, k, v, -g, lam)
        with self.assertRaisesRegex(TypeError, r"k: expected dtype float32, or a dtype that converts to it "
                                    r"without loss .* \(the working dtype, set by q\), got dtype float64"):
            loglinear.forward(q.astype(np.float32), k, v, g, lam)
        with self.assertRaisesRegex(TypeError, "q: expected dtype float64, .* got dtype complex128"):
            loglinear.forward(q.astype(np.complex128), k, v, g, lam)
        with self.assertRaisesRegex(ValueError, "form: expected one of naive, recurrent, chunked"):
            loglinear.forward(q, k, v, g, lam, form="fast")
        with self.assertRaisesRegex(ValueError, "chunk_size: expected a power of two"):
            loglinear.forward(q, k, v, g, lam, chunk_size=48)
        with self.assertRaisesRegex(ValueError, r"v: expected a 4-D array \[B,T,H,V\], got 3-D of shape \(9, 4, 5\)"):
            loglinear.forward(q, k, v[0], g, lam)
        with self.assertRaisesRegex(ValueError, "device: expected"):
            loglinear.forward(q, k, v, g, lam, device="tpu")
        if not loglinear.has_cuda:
            with self.assertRaisesRegex(RuntimeError, "no CUDA backend"):
                loglinear.forward(q, k, v, g, lam, device="cuda")
        elif not loglinear.cuda_available():
            with self.assertRaisesRegex(RuntimeError, "no CUDA device is present"):
                loglinear.forward(q, k, v, g, lam, device="cuda")

    def test_equivalent_dtype_objects_are_accepted(self):
        # Dtypes are compared by NumPy's equivalence, not object identity: an unpickled array's
        # dtype is a fresh object, not NumPy's float64/float32 singleton, and so is dtype('=f8').
        q, k, v, g, lam = random_inputs(self.rng, T=11)
        do = self.rng.standard_normal(v.shape)
        for dtype in (np.float64, np.float32):
            x = [a.astype(dtype) for a in (q, k, v, g, lam)]
            dx = do.astype(dtype)
            ref = loglinear.forward(*x)
            ref_grads = loglinear.backward(*x, dx)
            unpickled = [pickle.loads(pickle.dumps(a)) for a in x]
            self.assertIsNot(unpickled[0].dtype, np.dtype(dtype))  # the case this test is about
            self.assertEqual(unpickled[0].dtype, np.dtype(dtype))
            o = loglinear.forward(*unpickled)
            self.assertEqual(o.dtype, np.dtype(dtype))
            np.testing.assert_array_equal(o, ref, err_msg=f"pickled {np.dtype(dtype)} {self.seed_note}")
            grads = loglinear.backward(*unpickled, pickle.loads(pickle.dumps(dx)))
            for name, d in grads.items():
                np.testing.assert_array_equal(d, ref_grads[name],
                                              err_msg=f"pickled {np.dtype(dtype)} {name} {self.seed_note}")
            # An explicitly native byte order, and a dtype carrying metadata: the same type.
            native = np.dtype(dtype).newbyteorder("=")
            o = loglinear.forward(*[a.astype(native) for a in x])
            np.testing.assert_array_equal(o, ref, err_msg=f"native {native} {self.seed_note}")
            tagged = np.dtype(dtype, metadata={"unit": "none"})
            o = loglinear.forward(*[a.astype(tagged) for a in x])
            np.testing.assert_array_equal(o, ref, err_msg=f"metadata {tagged} {self.seed_note}")
        # q decides the dtype; an equivalent but distinct dtype object for the others is fine.
        o = loglinear.forward(q, pickle.loads(pickle.dumps(k)), v.astype(np.dtype("=f8")), g, lam)
        np.testing.assert_array_equal(o, loglinear.forward(q, k, v, g, lam), err_msg=self.seed_note)
        # The decoder and decay_mask take float64 the same way.
        dec = loglinear.Decoder(2, 4, 2, 3, 5)
        o_t = dec.step(*[pickle.loads(pickle.dumps(a[:, 0])) for a in (q, k, v, g, lam)])
        self.assertEqual(o_t.shape, (2, 4, 5))
        W = loglinear.decay_mask(pickle.loads(pickle.dumps(g[0, :, 0])), pickle.loads(pickle.dumps(lam[0, :, 0])))
        self.assertEqual(W.shape, (11, 11))

    def test_non_native_byte_order_is_converted_not_misread(self):
        # A byte-swapped float array converts without loss, so it is accepted (copied into the
        # native order): the same result as the native array, bit for bit.
        q, k, v, g, lam = random_inputs(self.rng, T=9)
        swapped = ">" if sys.byteorder == "little" else "<"
        for dtype in (np.float32, np.float64):
            x = [a.astype(dtype) for a in (q, k, v, g, lam)]
            other = np.dtype(dtype).newbyteorder(swapped)
            ref = loglinear.forward(*x)
            for i in range(5):
                y = list(x)
                y[i] = y[i].astype(other)
                o = loglinear.forward(*y)
                self.assertEqual(o.dtype, np.dtype(dtype))
                np.testing.assert_array_equal(o, ref, err_msg=f"{other} in argument {i} {self.seed_note}")

    def test_lossless_dtypes_and_array_likes_are_converted(self):
        # The working dtype is float32 if q is float32, float64 otherwise; the other arrays are
        # converted when no value can change (help(loglinear), "Arguments").
        q, k, v, g, lam = random_inputs(self.rng, T=9)
        ref = loglinear.forward(q, k, v, g, lam)
        # float32 into float64 is exact: the same as converting first.
        k32 = k.astype(np.float32)
        np.testing.assert_array_equal(loglinear.forward(q, k32, v, g, lam),
                                      loglinear.forward(q, k32.astype(np.float64), v, g, lam), err_msg=self.seed_note)
        # Nested lists and tuples are arrays of float64.
        o = loglinear.forward(q.tolist(), k.tolist(), tuple(v.tolist()), g.tolist(), lam.tolist())
        self.assertEqual(o.dtype, np.float64)
        np.testing.assert_array_equal(o, ref, err_msg=self.seed_note)
        # Integer arrays: exact in float64 (and int16 in float32).
        qi = np.rint(q * 4).astype(np.int64)
        np.testing.assert_array_equal(loglinear.forward(qi, k, v, g, lam),
                                      loglinear.forward(qi.astype(np.float64), k, v, g, lam), err_msg=self.seed_note)
        x32 = [a.astype(np.float32) for a in (q, k, v, g, lam)]
        k16 = x32[1].astype(np.float16)
        o16 = loglinear.forward(x32[0], k16, x32[2], x32[3], x32[4])
        self.assertEqual(o16.dtype, np.float32)
        np.testing.assert_array_equal(o16, loglinear.forward(x32[0], k16.astype(np.float32), *x32[2:]),
                                      err_msg=self.seed_note)
        o16 = loglinear.forward(x32[0], qi.astype(np.int16), *x32[2:])
        np.testing.assert_array_equal(o16, loglinear.forward(x32[0], qi.astype(np.float32), *x32[2:]),
                                      err_msg=self.seed_note)
        qh = q.astype(np.float16)  # float16 q: working dtype float64, converted exactly
        np.testing.assert_array_equal(loglinear.forward(qh, k, v, g, lam),
                                      loglinear.forward(qh.astype(np.float64), k, v, g, lam), err_msg=self.seed_note)
        # int64 beyond 2**53 would round in float64: refused with the value and its index.
        big = qi.copy()
        big[0, 0, 0, 1] = 2**53 + 1
        with self.assertRaisesRegex(ValueError, r"q: expected integers of magnitude <= 2\*\*53 .* got 9007199254740993 at flat index 1"):
            loglinear.forward(big, k, v, g, lam)
        # float64 into float32 is not exact: TypeError naming the argument and what it accepts.
        with self.assertRaisesRegex(TypeError, r"v: expected dtype float32, or a dtype that converts to it without loss "
                                    r"\(float16, int8, int16, uint8, uint16\)"):
            loglinear.forward(x32[0], x32[1], v, x32[3], x32[4])
        with self.assertRaisesRegex(TypeError, r"g: .* got list of dtype float64"):
            loglinear.forward(*x32[:3], g.tolist(), x32[4])
        for bad, dtype in ((q > 0, "bool"), (q.astype(np.complex64), "complex64"), (q.astype(object), "object")):
            with self.assertRaisesRegex(TypeError, f"q: expected dtype float64, .* got dtype {dtype}"):
                loglinear.forward(bad, k, v, g, lam)

    def test_cuda_device_matches_cpu_when_present(self):
        if not loglinear.cuda_available():
            self.skipTest("no CUDA device")
        x = [a.astype(np.float32) for a in random_inputs(self.rng, T=100)]
        ref = loglinear.forward(*[a.astype(np.float64) for a in x])
        o = loglinear.forward(*x, device="cuda")
        np.testing.assert_allclose(o, ref, rtol=0, atol=1e-4 * np.abs(ref).max(), err_msg=self.seed_note)

    def test_decoder_equals_forward(self):
        q, k, v, g, lam = random_inputs(self.rng, B=2, T=21, H=4, G=2, K=3, V=5)
        ref = loglinear.forward(q, k, v, g, lam)
        dec = loglinear.Decoder(2, 4, 2, 3, 5)
        for t in range(21):
            o_t = dec.step(q[:, t], k[:, t], v[:, t], g[:, t], lam[:, t])
            np.testing.assert_allclose(o_t, ref[:, t], rtol=0, atol=1e-12 * np.abs(ref).max(),
                                       err_msg=f"t={t} {self.seed_note}")
        self.assertEqual(dec.tokens, 21)
        self.assertEqual(dec.state().shape, (2, 4, loglinear.num_levels(21), 3, 5))

    def test_decay_mask_is_the_definition(self):
        T = 10
        g = -self.rng.uniform(0, 1, T)
        lam = self.rng.standard_normal((T, loglinear.num_levels(T)))
        W = loglinear.decay_mask(g, lam)
        Gc = np.cumsum(g)
        for t in range(T):
            for s in range(T):
                want = lam[t, (t ^ s).bit_length()] * np.exp(Gc[t] - Gc[s]) if s <= t else 0.0
                self.assertAlmostEqual(W[t, s], want, places=13)


if __name__ == "__main__":
    unittest.main()

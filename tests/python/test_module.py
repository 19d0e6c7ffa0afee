"""The Python module against a NumPy implementation written here from the definition (SPEC §3):
o_t = sum_{s<=t} lam_t[level(t,s)] exp(G_t - G_s) (q_t . k_s) v_s, with level(t,s) = bit_length(t^s).
Gradients are checked against central differences of that NumPy oracle."""
import unittest

import numpy as np

import loglinear


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
    def setUp(self):
        self.rng = np.random.default_rng()
        self.seed_note = "random inputs (fresh seed per run)"

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
                                               err_msg=f"{form} C={C} T={T}")

    def test_float32_is_close_to_float64(self):
        q, k, v, g, lam = random_inputs(self.rng, T=40)
        ref = loglinear.forward(q, k, v, g, lam)
        o32 = loglinear.forward(*[x.astype(np.float32) for x in (q, k, v, g, lam)])
        self.assertEqual(o32.dtype, np.float32)
        np.testing.assert_allclose(o32, ref, rtol=0, atol=1e-5 * np.abs(ref).max())

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
        np.testing.assert_array_equal(o, ref)

    def test_errors_arrive_as_value_error_with_the_cpp_message(self):
        q, k, v, g, lam = random_inputs(self.rng, T=9)
        with self.assertRaisesRegex(ValueError, r"lam: expected shape \[B,T,H,L\] = \[2,9,4,L\] with L >= num_levels\(9\) = 5"):
            loglinear.forward(q, k, v, g, lam[..., :4])
        with self.assertRaisesRegex(ValueError, "g: expected log-decay values <= 0"):
            loglinear.forward(q, k, v, -g, lam)
        with self.assertRaisesRegex(ValueError, "k: expected dtype float64 \\(the dtype of q\\), got float32"):
            loglinear.forward(q, k.astype(np.float32), v, g, lam)
        with self.assertRaisesRegex(ValueError, "q: expected dtype float32 or float64, got int64"):
            loglinear.forward(q.astype(np.int64), k, v, g, lam)
        with self.assertRaisesRegex(ValueError, "form: expected one of naive, recurrent, chunked"):
            loglinear.forward(q, k, v, g, lam, form="fast")
        with self.assertRaisesRegex(ValueError, "chunk_size: expected a power of two"):
            loglinear.forward(q, k, v, g, lam, chunk_size=48)
        with self.assertRaisesRegex(ValueError, "v: expected a 4-D array, got 3-D"):
            loglinear.forward(q, k, v[0], g, lam)
        with self.assertRaisesRegex(ValueError, "device: expected"):
            loglinear.forward(q, k, v, g, lam, device="tpu")
        if not loglinear.has_cuda:
            with self.assertRaisesRegex(RuntimeError, "no CUDA backend"):
                loglinear.forward(q, k, v, g, lam, device="cuda")
        elif not loglinear.cuda_available():
            with self.assertRaisesRegex(RuntimeError, "no CUDA device is present"):
                loglinear.forward(q, k, v, g, lam, device="cuda")

    def test_cuda_device_matches_cpu_when_present(self):
        if not loglinear.cuda_available():
            self.skipTest("no CUDA device")
        x = [a.astype(np.float32) for a in random_inputs(self.rng, T=100)]
        ref = loglinear.forward(*[a.astype(np.float64) for a in x])
        o = loglinear.forward(*x, device="cuda")
        np.testing.assert_allclose(o, ref, rtol=0, atol=1e-4 * np.abs(ref).max())

    def test_decoder_equals_forward(self):
        q, k, v, g, lam = random_inputs(self.rng, B=2, T=21, H=4, G=2, K=3, V=5)
        ref = loglinear.forward(q, k, v, g, lam)
        dec = loglinear.Decoder(2, 4, 2, 3, 5)
        for t in range(21):
            o_t = dec.step(q[:, t], k[:, t], v[:, t], g[:, t], lam[:, t])
            np.testing.assert_allclose(o_t, ref[:, t], rtol=0, atol=1e-12 * np.abs(ref).max())
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

"""loglinear.gdn_forward / gdn_backward (log-linear Gated DeltaNet, SPEC §6) through the bindings:
the three forms agree (float64, 1e-10 normwise relative) on odd sizes with G > 1 and K != V;
gdn_backward matches central differences of sum(do * o) through gdn_forward for entries of every
input; with one-hot keys the operator is Mamba-2's (loglinear.forward) on beta * v; bad input raises
the C++ messages; float32 works.

Random inputs are reproducible as in test_module.py: np.random.default_rng([seed, crc32(test id)]),
the seed printed on stderr and attached to failure messages; LOGLINEAR_TEST_SEED overrides it."""
import os
import sys
import unittest
import zlib

import numpy as np

import loglinear

DEFAULT_SEED = 20250616
SEED = int(os.environ.get("LOGLINEAR_TEST_SEED", DEFAULT_SEED))
FORMS = ("naive", "recurrent", "chunked")
GRADS = ("dq", "dk", "dv", "dg", "dbeta", "dlam")


def random_gdn(rng, B=2, T=13, H=4, G=2, K=3, V=5, dtype=np.float64):
    """q, k, v, g, beta, lam as the model feeds them: L2-normalised keys (every transition
    I - beta k k^T a contraction), beta in [0.05, 0.95] (finite-difference steps stay in [0, 1]),
    g <= -0.05 (steps stay <= 0) and one more level of lam than T needs (it must stay unread)."""
    L = loglinear.num_levels(T) + 1
    q = rng.standard_normal((B, T, G, K)) / np.sqrt(K)
    k = rng.standard_normal((B, T, G, K))
    k /= np.linalg.norm(k, axis=-1, keepdims=True)
    v = rng.standard_normal((B, T, H, V))
    g = -rng.uniform(0.05, 1.0, (B, T, H))
    beta = rng.uniform(0.05, 0.95, (B, T, H))
    lam = rng.standard_normal((B, T, H, L))
    return [x.astype(dtype) for x in (q, k, v, g, beta, lam)]


def rel_err(a, ref):
    """Normwise relative difference max|a - ref| / max|ref| (0 when both are 0)."""
    scale = np.abs(ref).max()
    diff = np.abs(np.asarray(a, np.float64) - ref).max()
    return diff / scale if scale > 0 else diff


class GdnTest(unittest.TestCase):
    longMessage = True

    @classmethod
    def setUpClass(cls):
        print(f"test_gdn: random seed {SEED} (rerun with LOGLINEAR_TEST_SEED={SEED})", file=sys.stderr)

    def setUp(self):
        self.rng = np.random.default_rng([SEED, zlib.crc32(self.id().encode())])
        self.seed_note = f"[random inputs: LOGLINEAR_TEST_SEED={SEED}]"

    def _formatMessage(self, msg, standardMsg):
        return f"{super()._formatMessage(msg, standardMsg)} {self.seed_note}"

    def test_three_forms_agree_forward_and_every_gradient(self):
        worst = 0.0
        for T, H, G, K, V in ((1, 2, 2, 3, 5), (7, 6, 3, 5, 3), (13, 4, 2, 3, 5), (37, 3, 3, 7, 2)):
            x = random_gdn(self.rng, B=2, T=T, H=H, G=G, K=K, V=V)
            do = self.rng.standard_normal(x[2].shape)
            o_ref = loglinear.gdn_forward(*x, form="naive")
            g_ref = loglinear.gdn_backward(*x, do, form="naive")
            self.assertEqual(sorted(g_ref), sorted(GRADS))
            for name, a in zip(("q", "k", "v", "g", "beta", "lam"), x):
                self.assertEqual(g_ref["d" + name].shape, a.shape, f"d{name}")
                self.assertEqual(g_ref["d" + name].dtype, np.float64, f"d{name}")
            for form, C in (("recurrent", 64), ("chunked", 1), ("chunked", 4), ("chunked", 16), ("chunked", 64)):
                where = f"{form} C={C} T={T} H={H} G={G} K={K} V={V}"
                o = loglinear.gdn_forward(*x, form=form, chunk_size=C)
                worst = max(worst, rel_err(o, o_ref))
                self.assertLessEqual(rel_err(o, o_ref), 1e-10, f"o {where}")
                grads = loglinear.gdn_backward(*x, do, form=form, chunk_size=C)
                for n in GRADS:
                    worst = max(worst, rel_err(grads[n], g_ref[n]))
                    self.assertLessEqual(rel_err(grads[n], g_ref[n]), 1e-10, f"{n} {where}")
        print(f"test_gdn: three forms, worst relative difference {worst:.1e}", file=sys.stderr)

    def test_gdn_backward_matches_finite_differences_of_gdn_forward(self):
        # Loss sum(do * o); central differences with step 1e-6 at five entries of every input
        # (one of them in lam's unread extra level, whose gradient is 0), in every form.
        names = ("q", "k", "v", "g", "beta", "lam")
        x = random_gdn(self.rng, B=2, T=7, H=4, G=2, K=3, V=2)
        # Keys of length 0.5-1.4: a term right only for |k| = 1 would show up.
        x[1] *= self.rng.uniform(0.5, 1.4, x[1].shape[:-1] + (1,))
        do = self.rng.standard_normal(x[2].shape)
        eps, worst = 1e-6, 0.0
        for form in FORMS:
            grads = loglinear.gdn_backward(*x, do, form=form, chunk_size=2)
            loss = lambda: float(np.sum(do * loglinear.gdn_forward(*x, form=form, chunk_size=2)))
            for i, name in enumerate(names):
                a = x[i]
                flat = self.rng.choice(a.size, 5, replace=False)
                if name == "lam":  # the last level is beyond num_levels(T): never read
                    flat[0] = np.ravel_multi_index((1, 3, 2, a.shape[-1] - 1), a.shape)
                for f in flat:
                    idx = np.unravel_index(f, a.shape)
                    saved = a[idx]
                    a[idx] = saved + eps
                    up = loss()
                    a[idx] = saved - eps
                    down = loss()
                    a[idx] = saved
                    numeric = (up - down) / (2 * eps)
                    err = abs(grads["d" + name][idx] - numeric) / max(1.0, abs(numeric))
                    worst = max(worst, err)
                    self.assertLess(err, 1e-6, f"{form} d{name}{idx}: {grads['d' + name][idx]} vs {numeric}")
        print(f"test_gdn: finite differences, worst relative error {worst:.1e}", file=sys.stderr)

    def test_orthogonal_keys_give_mamba2_on_beta_v(self):
        # One-hot keys on distinct coordinates (T <= K): k_t . k_s = 0 for s < t, so no erase ever
        # touches an earlier write and every form is loglinear.forward applied to beta * v.
        B, T, H, G, K, V = 2, 6, 4, 2, 7, 3
        q, k, v, g, beta, lam = random_gdn(self.rng, B=B, T=T, H=H, G=G, K=K, V=V)
        k[:] = 0
        for b in range(B):
            for gr in range(G):
                for t, p in enumerate(self.rng.permutation(K)[:T]):
                    k[b, t, gr, p] = 0.5 + 0.1 * t
        ref = loglinear.forward(q, k, beta[..., None] * v, g, lam, form="naive")
        for form in FORMS:
            o = loglinear.gdn_forward(q, k, v, g, beta, lam, form=form, chunk_size=2)
            self.assertLessEqual(rel_err(o, ref), 1e-12, form)

    def test_float32(self):
        x = random_gdn(self.rng, B=2, T=21, H=4, G=2, K=3, V=5)
        do = self.rng.standard_normal(x[2].shape)
        o_ref = loglinear.gdn_forward(*x, form="naive")
        g_ref = loglinear.gdn_backward(*x, do, form="naive")
        x32 = [a.astype(np.float32) for a in x]
        for form in FORMS:
            o = loglinear.gdn_forward(*x32, form=form, chunk_size=8)
            self.assertEqual(o.dtype, np.float32)
            self.assertLessEqual(rel_err(o, o_ref), 1e-5, form)
            grads = loglinear.gdn_backward(*x32, do.astype(np.float32), form=form, chunk_size=8)
            for n in GRADS:
                self.assertEqual(grads[n].dtype, np.float32, f"{form} {n}")
                self.assertLessEqual(rel_err(grads[n], g_ref[n]), 1e-5, f"{form} {n}")

    def test_errors_name_the_argument(self):
        q, k, v, g, beta, lam = random_gdn(self.rng, B=2, T=9, H=4, G=2, K=3, V=5)
        do = self.rng.standard_normal(v.shape)
        both = (lambda *a, **kw: loglinear.gdn_forward(*a, **kw),
                lambda *a, **kw: loglinear.gdn_backward(*a[:6], do, *a[6:], **kw))
        for form in FORMS:
            for call in both:
                for bad in (1.5, -0.25):
                    b = beta.copy()
                    b[1, 3, 2] = bad
                    with self.assertRaisesRegex(ValueError, r"^beta: expected values in \[0, 1\], got "
                                                + f"{bad:f} at flat index {np.ravel_multi_index((1, 3, 2), b.shape)}$"):
                        call(q, k, v, g, b, lam, form=form)
                b = beta.copy()
                b[0, 0, 0], b[1, 8, 3] = 0.0, 1.0  # the ends of [0, 1] are accepted
                call(q, k, v, g, b, lam, form=form)
                b[0, 2, 1] = np.nan
                with self.assertRaisesRegex(ValueError, "^beta: expected finite values"):
                    call(q, k, v, g, b, lam, form=form)
                with self.assertRaisesRegex(ValueError, r"^beta: expected shape \[2,9,4\] = \[B,T,H\], got \[2,9,3\]$"):
                    call(q, k, v, g, beta[..., :3], lam, form=form)
                with self.assertRaisesRegex(ValueError, r"^beta: expected a 3-D array \[B,T,H\], got 4-D"):
                    call(q, k, v, g, beta[..., None], lam, form=form)
                with self.assertRaisesRegex(ValueError, r"^k: expected shape \[2,9,2,3\] \(same as q\)"):
                    call(q, k[..., :2], v, g, beta, lam, form=form)
                with self.assertRaisesRegex(ValueError, r"^v: expected a 4-D array \[B,T,H,V\], got 3-D"):
                    call(q, k, v[0], g, beta, lam, form=form)
                with self.assertRaisesRegex(ValueError, r"^lam: expected shape \[B,T,H,L\] = \[2,9,4,L\] "
                                            r"with L >= num_levels\(9\) = 5"):
                    call(q, k, v, g, beta, lam[..., :4], form=form)
                with self.assertRaisesRegex(ValueError, "^g: expected log-decay values <= 0"):
                    call(q, k, v, -g, beta, lam, form=form)
                with self.assertRaisesRegex(TypeError, r"^beta: expected dtype float32, .* \(the working dtype, "
                                            r"set by q\), got dtype float64"):
                    call(*[a.astype(np.float32) for a in (q, k, v, g)], beta, lam.astype(np.float32), form=form)
        for call in both:
            with self.assertRaisesRegex(ValueError, '^form: expected one of naive, recurrent, chunked, got "delta"$'):
                call(q, k, v, g, beta, lam, form="delta")
            with self.assertRaisesRegex(TypeError, "^form: expected a str, got NoneType"):
                call(q, k, v, g, beta, lam, form=None)
            with self.assertRaisesRegex(ValueError, "^chunk_size: expected a power of two"):
                call(q, k, v, g, beta, lam, chunk_size=48)
        with self.assertRaisesRegex(ValueError, r"^do: expected shape \[2,9,4,5\] = \[B,T,H,V\] \(as v\), got \[2,9,4,4\]"):
            loglinear.gdn_backward(q, k, v, g, beta, lam, do[..., :4])
        bad_do = do.copy()
        bad_do[0, 1, 2, 3] = np.inf
        with self.assertRaisesRegex(ValueError, "^do: expected finite values"):
            loglinear.gdn_backward(q, k, v, g, beta, lam, bad_do)

    def test_keyword_arguments_and_defaults(self):
        q, k, v, g, beta, lam = random_gdn(self.rng, T=70)
        do = self.rng.standard_normal(v.shape)
        o = loglinear.gdn_forward(q=q, k=k, v=v, g=g, beta=beta, lam=lam)  # chunked, C = 64
        np.testing.assert_array_equal(o, loglinear.gdn_forward(q, k, v, g, beta, lam, form="chunked", chunk_size=64))
        grads = loglinear.gdn_backward(q=q, k=k, v=v, g=g, beta=beta, lam=lam, do=do)
        ref = loglinear.gdn_backward(q, k, v, g, beta, lam, do, form="chunked", chunk_size=64)
        for n in GRADS:
            np.testing.assert_array_equal(grads[n], ref[n], err_msg=n)


if __name__ == "__main__":
    unittest.main()

"""Regression tests: every input that ever crashed, hung or over-allocated the Python module, written
out by hand (issue 11). Each test names what used to happen. test_fuzz.py searches for new ones;
whatever it finds is added here.

The contract: a result of the right shape with finite values, or ValueError / TypeError whose
message starts with the name of the offending argument. Never a crash, a MemoryError, pybind11's
"incompatible function arguments" dump, or an allocation sized from a caller's number."""
import sys
import unittest

import numpy as np

import loglinear


def inputs(T=100, B=1, H=2, G=1, K=3, V=4, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    L = loglinear.num_levels(T)
    x = [rng.standard_normal((B, T, G, K)), rng.standard_normal((B, T, G, K)),
         rng.standard_normal((B, T, H, V)), -rng.uniform(0.05, 1.0, (B, T, H)),
         rng.standard_normal((B, T, H, L))]
    return [a.astype(dtype) for a in x]


class ChunkSizeTest(unittest.TestCase):
    def test_chunk_size_2_pow_40_used_to_segfault_and_is_clamped(self):
        # Was: a level table of C*C ints, C*C overflowing 64 bits -> segmentation fault.
        for dtype in (np.float32, np.float64):
            x = inputs(dtype=dtype)
            do = np.ones_like(x[2])
            ref = loglinear.forward(*x, chunk_size=128)  # smallest power of two >= T = 100
            np.testing.assert_array_equal(loglinear.forward(*x, chunk_size=2**40), ref)
            ref_grads = loglinear.backward(*x, do, chunk_size=128)
            grads = loglinear.backward(*x, do, chunk_size=2**40)
            for name in ref_grads:
                np.testing.assert_array_equal(grads[name], ref_grads[name], err_msg=name)

    def test_chunk_size_2_pow_20_used_to_raise_memory_error_at_T_100(self):
        # Was: a 2^20 x 2^20 level table (4 TiB) -> MemoryError.
        x = inputs()
        np.testing.assert_array_equal(loglinear.forward(*x, chunk_size=2**20),
                                      loglinear.forward(*x, chunk_size=128))

    def test_any_power_of_two_above_T_is_clamped_even_beyond_64_bits(self):
        x = inputs(T=5)
        ref = loglinear.forward(*x, chunk_size=8)
        for C in (16, 2**62, 2**63, 2**64, 2**200):
            np.testing.assert_array_equal(loglinear.forward(*x, chunk_size=C), ref, err_msg=str(C))

    def test_chunk_sizes_that_are_not_powers_of_two_are_refused(self):
        x = inputs(T=5)
        for C in (0, -1, -2**40, 3, 2**40 + 1):
            with self.assertRaisesRegex(ValueError, "^chunk_size: expected a power of two >= 1"):
                loglinear.forward(*x, chunk_size=C)
        for C in (2**200 + 1, -2**200):
            with self.assertRaisesRegex(ValueError, "^chunk_size: expected an integer that fits in 64 bits"):
                loglinear.forward(*x, chunk_size=C)
        for C in (2.0, None, "64", True, np.array([64])):
            with self.assertRaisesRegex(TypeError, "^chunk_size: expected an int, got"):
                loglinear.forward(*x, chunk_size=C)
        # NumPy integers are ints.
        np.testing.assert_array_equal(loglinear.forward(*x, chunk_size=np.int64(4)),
                                      loglinear.forward(*x, chunk_size=4))


class SizesTest(unittest.TestCase):
    def test_a_state_that_cannot_fit_is_refused_before_allocation(self):
        # K = V = 2^21 from 16 MB inputs: a K x V state of 32 TiB.
        K = 2**21
        q = np.broadcast_to(0.0, (1, 1, 1, K))
        v = np.broadcast_to(0.0, (1, 1, 1, K))
        g, lam = np.zeros((1, 1, 1)), np.zeros((1, 1, 1, 1))
        for form in ("recurrent", "chunked"):
            with self.assertRaisesRegex(ValueError, "^q, v: .*more than this machine's memory"):
                loglinear.forward(q, q, v, g, lam, form=form)

    def test_a_broadcast_view_is_not_copied_when_the_copy_cannot_fit(self):
        # A view of 2^40 x 3 elements holds 8 bytes; its copy would need 24 TiB.
        x = inputs(T=4)
        huge = np.broadcast_to(x[0][:, :1], (1, 2**40, 1, 3))
        with self.assertRaisesRegex(ValueError, r"^k: expected shape \[1,1099511627776,1,3\] \(same as q\)"):
            loglinear.forward(huge, *x[1:])  # shapes are checked before anything is copied
        q = np.broadcast_to(0.0, (1, 2**40, 1, 3))
        v = np.broadcast_to(0.0, (1, 2**40, 2, 4))
        g = np.broadcast_to(0.0, (1, 2**40, 2))
        lam = np.broadcast_to(0.0, (1, 2**40, 2, 41))
        with self.assertRaisesRegex(ValueError, "^q: the converted copy .* more than this machine's memory"):
            loglinear.forward(q, q, v, g, lam)
        # int64 views are checked for exactness (|x| <= 2**53) only after that size check.
        qi = np.broadcast_to(np.int64(1), q.shape)
        with self.assertRaisesRegex(ValueError, "^q: the converted copy .* more than this machine's memory"):
            loglinear.forward(qi, q, v, g, lam)

    def test_decoder_sizes_that_cannot_fit_are_refused(self):
        with self.assertRaisesRegex(ValueError, "^Decoder: B x H streams: the element count"):
            loglinear.Decoder(2**40, 2**40, 1, 1, 1)
        with self.assertRaisesRegex(ValueError, "^Decoder: .*more than this machine's memory"):
            loglinear.Decoder(1, 1, 1, 2**30, 2**30)
        with self.assertRaisesRegex(ValueError, "^B: expected an integer that fits in 64 bits"):
            loglinear.Decoder(2**64, 1, 1, 1, 1)
        with self.assertRaisesRegex(ValueError, "^Decoder: expected B, H, G, K, V >= 1"):
            loglinear.Decoder(1, 1, 1, 0, 1)
        for bad in (1.5, None, True, "1"):
            with self.assertRaisesRegex(TypeError, "^K: expected an int"):
                loglinear.Decoder(1, 1, 1, bad, 1)

    def test_integer_helpers_refuse_out_of_range_values(self):
        # buckets(2**63 - 1) would end its last bucket at 2**63: signed overflow in C++.
        with self.assertRaisesRegex(ValueError, r"^t: expected 0 <= t < 2\*\*63 - 1"):
            loglinear.buckets(2**63 - 1)
        self.assertEqual(loglinear.buckets(2**63 - 2)[0], (0, 2**63 - 2, 2**63 - 1))
        self.assertEqual(loglinear.num_levels(2**63 - 1), 64)
        self.assertEqual(loglinear.level(2**63 - 1, 0), 63)
        for f, name, args in ((loglinear.level, "t", (2**63, 0)), (loglinear.num_levels, "T", (2**64,)),
                              (loglinear.buckets, "t", (-2**100,))):
            with self.assertRaisesRegex(ValueError, f"^{name}: expected an integer that fits in 64 bits"):
                f(*args)
        with self.assertRaisesRegex(ValueError, r"^num_levels\(T\): expected T >= 1"):
            loglinear.num_levels(0)
        with self.assertRaisesRegex(TypeError, "^s: expected an int, got float"):
            loglinear.level(3, 1.0)


class ObjectsTest(unittest.TestCase):
    def test_objects_that_are_not_arrays_get_a_type_error_naming_the_argument(self):
        x = inputs(T=4)
        for bad in (None, "abc", {}, object(), [[1.0], [2.0, 3.0]], [1 + 2j], np.zeros(3, dtype="M8[s]"),
                    np.zeros(3, dtype=[("a", "f8")]), range(10**18)):
            for i, name in enumerate(("q", "k", "v", "g", "lam")):
                y = list(x)
                y[i] = bad
                with self.assertRaisesRegex(TypeError, f"^{name}: expected ", msg=f"{name}={bad!r}"):
                    loglinear.forward(*y)
        with self.assertRaisesRegex(TypeError, "^form: expected a str, got int"):
            loglinear.forward(*x, form=3)
        with self.assertRaisesRegex(TypeError, "^do: expected "):
            loglinear.backward(*x, None)

    def test_a_bad_output_gradient_is_named_do(self):
        # Found by test_fuzz: a NaN in do was reported as "dout: ...", a name the caller never used.
        x = inputs(T=1)
        do = np.full_like(x[2], np.nan)
        for form in ("naive", "recurrent", "chunked"):
            with self.assertRaisesRegex(ValueError, "^do: expected finite values, got nan"):
                loglinear.backward(*x, do, form=form)
        with self.assertRaisesRegex(ValueError, r"^do: expected shape \[1,1,2,4\] = \[B,T,H,V\] \(as v\)"):
            loglinear.backward(*x, x[2][..., :3])

    def test_wrong_ranks_zero_d_and_empty_arrays_get_a_value_error(self):
        x = inputs(T=4)
        for bad, what in ((np.float64(1.0), "0-D"), (3.0, "0-D"), (x[0][0], "3-D"), (x[0][None], "5-D")):
            with self.assertRaisesRegex(ValueError, f"^q: expected a 4-D array \\[B,T,G,K\\], got {what}"):
                loglinear.forward(bad, *x[1:])
        with self.assertRaisesRegex(ValueError, "^q: expected T >= 1 tokens"):
            loglinear.forward(*[a[:, :0] for a in x])
        with self.assertRaisesRegex(ValueError, r"^v: expected shape \[B,T,H,V\] with every size >= 1"):
            loglinear.forward(x[0], x[1], x[2][..., :0], x[3], x[4])
        with self.assertRaisesRegex(ValueError, r"^g: expected T >= 1 tokens"):
            loglinear.decay_mask([], np.zeros((0, 1)))

    def test_decay_mask_validates_its_values(self):
        # Was: a lam with fewer than num_levels(T) columns was read out of bounds in C++, and
        # NaN or positive g returned NaN / Inf.
        with self.assertRaisesRegex(ValueError, r"^lam: expected shape \[T,L\] = \[2,L\] with L >= num_levels\(2\) = 2"):
            loglinear.decay_mask([-1.0, -1.0], [[1.0], [1.0]])
        with self.assertRaisesRegex(ValueError, "^g: expected finite values, got nan"):
            loglinear.decay_mask([np.nan], [[1.0]])
        with self.assertRaisesRegex(ValueError, "^g: expected log-decay values <= 0"):
            loglinear.decay_mask([0.5], [[1.0]])
        self.assertEqual(loglinear.decay_mask([-1, 0], [[1, 2], [3, 4]]).shape, (2, 2))  # int lists

    def test_a_stepped_decoder_refuses_bad_tokens_without_changing_its_state(self):
        x = inputs(T=3)
        dec = loglinear.Decoder(1, 2, 1, 3, 4)
        dec.step(*[a[:, 0] for a in x])
        with self.assertRaisesRegex(ValueError, "^g_t: expected log-decay values <= 0"):
            dec.step(x[0][:, 1], x[1][:, 1], x[2][:, 1], -x[3][:, 1], x[4][:, 1])
        with self.assertRaisesRegex(TypeError, "^lam_t: expected dtype float64"):
            dec.step(x[0][:, 1], x[1][:, 1], x[2][:, 1], x[3][:, 1], "x")
        self.assertEqual(dec.tokens, 1)
        self.assertEqual(dec.step(*[a[:, 1] for a in x]).shape, (1, 2, 4))


if __name__ == "__main__":
    unittest.main()

"""loglinear.torch.chunk_log_linear_attn on CPU tensors (issue 15): against a dense implementation
written here from the definition, torch.autograd.gradcheck in float64 (inputs, initial state and
the final state's gradient), packed sequences equal to separate calls, state continuation and
prefill + decode equal to one call, and the error contract.

Tolerances: float64 results of different algorithms (chunked vs the dense sum) agree to rounding,
<= 1e-10 relative at these sizes (the forms agree to ~1e-14; the margin covers sums of up to T
terms). gradcheck uses central differences with eps 1e-6 and its default atol 1e-5 / rtol 1e-3.
float32 vs float64: <= 2e-5 relative (float32 rounding over T <= 64 tokens and log T levels).
"""
import contextlib
import os
import sys
import unittest

import numpy as np

try:
    import torch
except ImportError:  # the setup installs python3-torch; a missing torch is a failure, not a skip
    sys.exit("test_torch.py: torch is not importable; install Debian's python3-torch (scripts/setup.sh does)")

import loglinear
import loglinear.torch as lt

F64 = torch.float64


def level(t, s):
    """Fenwick level of token s seen from t (SPEC.md section 2): 0 on the diagonal, else bit_width(t ^ s)."""
    return 0 if s == t else (t ^ s).bit_length()


def dense(q, k, v, g, lam, start=0):
    """The definition, one (b, t, h) at a time: o = sum_{s<=t} lam[level] exp(G_t - G_s) (q.k) v. `start`
    is the absolute position of token 0 (a carried state's token count); tokens before it are not here."""
    B, T, G, K = q.shape
    H = v.shape[2]
    o = torch.zeros(B, T, H, v.shape[3], dtype=q.dtype)
    cum = torch.cumsum(g, dim=1)
    for b in range(B):
        for h in range(H):
            gi = h // (H // G)
            for t in range(T):
                for s in range(t + 1):
                    w = lam[b, t, h, level(start + t, start + s)] * torch.exp(cum[b, t, h] - cum[b, s, h])
                    o[b, t, h] += w * torch.dot(q[b, t, gi], k[b, s, gi]) * v[b, s, h]
    return o


def inputs(B, T, G, H, K, V, L, seed, dtype=F64, grad=False):
    gen = torch.Generator().manual_seed(seed)
    x = [torch.randn(B, T, G, K, generator=gen, dtype=dtype), torch.randn(B, T, G, K, generator=gen, dtype=dtype),
         torch.randn(B, T, H, V, generator=gen, dtype=dtype), -0.5 * torch.rand(B, T, H, generator=gen, dtype=dtype),
         torch.rand(B, T, H, L, generator=gen, dtype=dtype)]
    return [t.requires_grad_(grad) for t in x]


def rel(a, b):
    return float((a - b).abs().max() / max(b.abs().max(), 1e-300))


def packed_case(seed):
    """Four packed sequences of 7, 1, 20 and 9 tokens continuing states of 0, 3, 64 and 5 tokens
    (drawn by the CPU op from random prefixes), H = 2, K = 4, V = 3, float64: the reference call
    (with its gradient-carrying copies of the inputs and states) for the packed-state tests.
    Returns (x, s0, tokens, cu, o, fin, states): s0 and x require grad, states is s0's value."""
    lens, tokens = [7, 1, 20, 9], torch.tensor([0, 3, 64, 5])
    cu = torch.tensor(np.cumsum([0] + lens))
    H, K, V, L = 2, 4, 3, loglinear.num_levels(64 + 20) + 1
    states = torch.zeros(4, H, loglinear.num_levels(64), K, V, dtype=F64)
    for i, n in enumerate(tokens.tolist()):
        if n:
            _, st = lt.chunk_log_linear_attn(*inputs(1, n, 1, H, K, V, L, seed + i), output_final_state=True)
            states[i, :, :st.states.shape[2]] = st.states[0]
    x = inputs(1, sum(lens), 1, H, K, V, L, seed=seed + 1, grad=True)
    s0 = states.clone().requires_grad_()
    o, fin = lt.chunk_log_linear_attn(*x, initial_state=lt.LogLinearState(s0, tokens), cu_seqlens=cu, chunk_size=8,
                                      output_final_state=True)
    return x, s0, tokens, cu, o, fin, states


class TestDefinition(unittest.TestCase):
    def test_equals_dense_definition(self):
        for (B, T, G, H, K, V, C, seed) in [(2, 37, 1, 2, 5, 3, 8, 1), (1, 1, 1, 1, 2, 2, 64, 2),
                                            (1, 45, 2, 4, 3, 6, 16, 3), (3, 16, 1, 1, 4, 4, 4, 4)]:
            q, k, v, g, lam = inputs(B, T, G, H, K, V, loglinear.num_levels(T), seed)
            o, st = lt.chunk_log_linear_attn(q, k, v, g, lam, chunk_size=C, output_final_state=True)
            self.assertLess(rel(o, dense(q, k, v, g, lam)), 1e-10, (B, T, G, H, K, V, C))
            self.assertEqual(tuple(st.tokens.tolist()), (T,) * B)
            self.assertEqual(tuple(st.states.shape), (B, H, loglinear.num_levels(T), K, V))
            o_rec, _ = lt.chunk_log_linear_attn(q, k, v, g, lam, form="recurrent")
            self.assertLess(rel(o_rec, o), 1e-12)

    def test_float32_agrees_with_float64(self):
        q, k, v, g, lam = inputs(2, 50, 1, 2, 8, 4, 7, seed=5)
        o64, _ = lt.chunk_log_linear_attn(q, k, v, g, lam)
        o32, _ = lt.chunk_log_linear_attn(*[x.float() for x in (q, k, v, g, lam)])
        self.assertEqual(o32.dtype, torch.float32)
        self.assertLess(rel(o32.double(), o64), 2e-5)


class TestGradients(unittest.TestCase):
    def test_gradcheck_inputs(self):
        for (B, T, G, H, K, V, C) in [(1, 13, 1, 2, 3, 2, 4), (2, 9, 2, 2, 2, 3, 8), (1, 1, 1, 1, 2, 2, 64)]:
            x = inputs(B, T, G, H, K, V, loglinear.num_levels(T), seed=T, grad=True)
            f = lambda *a: lt.chunk_log_linear_attn(*a, chunk_size=C)[0]  # noqa: E731
            self.assertTrue(torch.autograd.gradcheck(f, tuple(x), eps=1e-6))

    def test_gradcheck_initial_and_final_state(self):
        """Gradients reach the initial state, and a loss on the final state reaches everything."""
        T0, T1, H, K, V = 11, 7, 2, 3, 2
        L = loglinear.num_levels(T0 + T1)
        pre = inputs(1, T0, 1, H, K, V, L, seed=7)
        _, st = lt.chunk_log_linear_attn(*pre, output_final_state=True)
        x = inputs(1, T1, 1, H, K, V, L, seed=8, grad=True)
        s0 = st.states.clone().requires_grad_()

        def f(q, k, v, g, lam, s):
            o, fin = lt.chunk_log_linear_attn(q, k, v, g, lam, lt.LogLinearState(s, st.tokens),
                                              output_final_state=True, chunk_size=4)
            return o, fin.states
        self.assertTrue(torch.autograd.gradcheck(f, (*x, s0), eps=1e-6))

    def test_gradcheck_packed_with_state(self):
        cu = torch.tensor([0, 5, 6, 14])
        x = inputs(1, 14, 1, 2, 2, 3, loglinear.num_levels(8 + 12), seed=9, grad=True)
        tokens = torch.tensor([3, 0, 12])
        gen = torch.Generator().manual_seed(10)
        L0 = loglinear.num_levels(12)
        s = torch.zeros(3, 2, L0, 2, 3, dtype=F64)
        for i, n in enumerate(tokens.tolist()):
            if n:
                s[i, :, :loglinear.num_levels(n)] = torch.randn(2, loglinear.num_levels(n), 2, 3, generator=gen,
                                                                dtype=F64)
        s.requires_grad_()

        def f(q, k, v, g, lam, s):
            # The padding levels of s are zero by contract, so perturbing them is refused: gradcheck
            # sees the state through a mask that keeps the padding at zero.
            mask = torch.zeros_like(s)
            for i, n in enumerate(tokens.tolist()):
                if n:
                    mask[i, :, :loglinear.num_levels(n)] = 1
            o, fin = lt.chunk_log_linear_attn(q, k, v, g, lam, lt.LogLinearState(s * mask, tokens),
                                              output_final_state=True, cu_seqlens=cu, chunk_size=4)
            return o, fin.states
        self.assertTrue(torch.autograd.gradcheck(f, (*x, s), eps=1e-6))


class TestStateAndPacking(unittest.TestCase):
    def test_packed_equals_separate_calls(self):
        lens = [7, 1, 20, 9]
        cu = torch.tensor(np.cumsum([0] + lens))
        x = inputs(1, sum(lens), 2, 4, 3, 5, loglinear.num_levels(20), seed=11, grad=True)
        o, st = lt.chunk_log_linear_attn(*x, cu_seqlens=cu, chunk_size=8, output_final_state=True)
        (o * torch.linspace(-1, 1, o.numel(), dtype=F64).view_as(o)).sum().backward()
        packed_grads = [t.grad.clone() for t in x]
        for t in x:
            t.grad = None
        for i, n in enumerate(lens):
            a, b = int(cu[i]), int(cu[i + 1])
            part = [t[:, a:b] for t in x]
            oi, sti = lt.chunk_log_linear_attn(*part, chunk_size=8, output_final_state=True)
            self.assertLess(rel(o[:, a:b], oi), 1e-12, f"sequence {i}")
            self.assertEqual(int(st.tokens[i]), n)
            li = loglinear.num_levels(n)
            self.assertLess(rel(st.states[i:i + 1, :, :li], sti.states), 1e-12)
            self.assertEqual(float(st.states[i, :, li:].abs().sum()), 0.0)  # padding stays zero
            (oi * torch.linspace(-1, 1, o.numel(), dtype=F64).view_as(o)[:, a:b]).sum().backward()
        for name, pg, t in zip("q k v g level_scales".split(), packed_grads, x):
            self.assertLess(rel(pg, t.grad), 1e-12, name)

    def test_gpu_packing_plumbing_on_cpu(self):
        """The GPU's packed path (one stateful call per sequence, outputs concatenated, final states
        padded and stacked, gradients through autograd) runs here with its per-sequence call swapped
        for the CPU op, against the CPU's packed op: what the GPU adds to the kernels is checked
        without a GPU."""
        class CpuPerSequence:
            @staticmethod
            def apply(q, k, v, g, lam, states, tokens, chunk_size, validate):
                init = None if states is None else lt.LogLinearState(states, tokens)
                o, fin = lt.chunk_log_linear_attn(q, k, v, g, lam, initial_state=init, chunk_size=chunk_size,
                                                  output_final_state=True, validate=validate)
                return o, fin.states, fin.tokens
        x, s0, T0, cu, o, fin, states = packed_case(60)
        x2 = [t.detach().clone().requires_grad_() for t in x]
        s02 = states.clone().requires_grad_()
        saved = lt._ChunkLogLinearAttnCuda
        lt._ChunkLogLinearAttnCuda = CpuPerSequence
        try:
            o2, fin_states, fin_tokens = lt._packed_cuda(*x2, cu, s02, T0, 8, True)
            with self.assertRaisesRegex(ValueError, "^cu_seqlens: expected the last offset"):
                lt._packed_cuda(*x2, cu[:-1], s02[:3], T0[:3], 8, True)
            with self.assertRaisesRegex(ValueError, r"^initial_state.tokens: expected shape \(4,\)"):
                lt._packed_cuda(*x2, cu, s02, T0[:3], 8, True)
        finally:
            lt._ChunkLogLinearAttnCuda = saved
        self.assertLess(rel(o2, o), 1e-12)
        self.assertEqual(fin_tokens.tolist(), fin.tokens.tolist())
        self.assertEqual(tuple(fin_states.shape), tuple(fin.states.shape))
        self.assertLess(rel(fin_states, fin.states), 1e-12)
        gen = torch.Generator().manual_seed(62)
        w, wf = torch.randn(o.shape, generator=gen, dtype=F64), torch.randn(fin.states.shape, generator=gen, dtype=F64)
        ((o * w).sum() + (fin.states * wf).sum()).backward()
        ((o2 * w).sum() + (fin_states * wf).sum()).backward()
        for name, a, b in zip(("dq", "dk", "dv", "dg", "dlam", "d_initial"), (*x2, s02), (*x, s0)):
            self.assertLess(rel(a.grad, b.grad), 1e-12, name)

    def test_when_the_varlen_kernel_is_taken(self):
        """Packed sequences without state take the GPU's varlen kernels (one call) unless the grid's
        chunk slots, the longest sequence's chunks for every sequence, exceed 4x their own chunks."""
        self.assertTrue(lt._varlen_kernel_pays([0, 7, 8, 24, 33, 46], 8, 4))   # 5 x 2 slots, 8 chunks
        self.assertTrue(lt._varlen_kernel_pays([0, 50], 64, 4))                # one sequence
        self.assertFalse(lt._varlen_kernel_pays([0, 1, 2, 3, 4, 1000], 8, 4))  # 5 x 125 > 4 x 129
        self.assertTrue(lt._varlen_kernel_pays([0, 1, 2, 3, 4, 1000], 64, 4))  # 5 x 16 <= 4 x 20
        self.assertFalse(lt._varlen_kernel_pays(list(range(0, 8193)), 64, 16))  # 8192 x 16 streams > 65535

    def test_state_continuation_equals_one_call(self):
        for T0, C in [(13, 4), (16, 8), (1, 64)]:
            T = T0 + 21
            x = inputs(2, T, 1, 2, 4, 3, loglinear.num_levels(T), seed=T0, grad=True)
            o_all, st_all = lt.chunk_log_linear_attn(*x, chunk_size=C, output_final_state=True)
            o1, st1 = lt.chunk_log_linear_attn(*[t[:, :T0] for t in x], chunk_size=C, output_final_state=True)
            o2, st2 = lt.chunk_log_linear_attn(*[t[:, T0:] for t in x], initial_state=st1, chunk_size=C,
                                               output_final_state=True)
            self.assertLess(rel(torch.cat([o1, o2], 1), o_all), 1e-12)
            self.assertLess(rel(st2.states, st_all.states), 1e-12)
            self.assertEqual(st2.tokens.tolist(), [T, T])
            # Gradients through the split equal those of the one call.
            w = torch.randn(o_all.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
            ga = torch.autograd.grad((o_all * w).sum(), x)
            gs = torch.autograd.grad((torch.cat([o1, o2], 1) * w).sum(), x)
            for name, a, b in zip("q k v g level_scales".split(), ga, gs):
                self.assertLess(rel(b, a), 1e-11, name)

    def test_prefill_then_decode_equals_one_call(self):
        T0, steps = 10, 23
        T = T0 + steps
        x = inputs(2, T, 2, 2, 3, 4, loglinear.num_levels(T), seed=12)
        o_all, _ = lt.chunk_log_linear_attn(*x)
        o, state = lt.chunk_log_linear_attn(*[t[:, :T0] for t in x], output_final_state=True)
        outs = [o]
        for t in range(T0, T):
            o_t, state = lt.decode_step(*[u[:, t:t + 1] for u in x], state)
            outs.append(o_t)
        self.assertLess(rel(torch.cat(outs, 1), o_all), 1e-12)
        self.assertEqual(state.tokens.tolist(), [T, T])

    def test_ragged_decode_equals_each_stream_alone(self):
        """Streams at different positions (a packed prefill of prompts of different lengths, one of
        them empty) decode together: each stream's outputs and state equal one call over that
        stream's tokens alone; levels a shorter stream has not reached stay zero; gradients reach
        the decoded tokens' inputs and the carried state (float64 gradcheck)."""
        lens, steps, H, G, K, V = [7, 1, 20, 0, 9], 5, 2, 1, 3, 2
        N, T = len(lens), max(lens) + steps
        L = loglinear.num_levels(T)
        seqs = [inputs(1, n + steps, G, H, K, V, L, seed=60 + i) for i, n in enumerate(lens)]
        state = packed_prefill(seqs, lens)
        outs = []
        for i in range(steps):
            xt = [torch.cat([x[j][:, n + i:n + i + 1] for x, n in zip(seqs, lens)], 0) for j in range(5)]
            o_t, state = lt.decode_step(*xt, state)
            self.assertEqual(tuple(o_t.shape), (N, 1, H, V))
            outs.append(o_t)
        self.assertEqual(state.tokens.tolist(), [n + steps for n in lens])
        for b, (x, n) in enumerate(zip(seqs, lens)):
            o_all, fin = lt.chunk_log_linear_attn(*x, output_final_state=True)
            self.assertLess(rel(torch.cat([o[b:b + 1] for o in outs], 1), o_all[:, n:]), 1e-12, b)
            held = fin.states.shape[2]
            self.assertLess(rel(state.states[b:b + 1, :, :held], fin.states), 1e-12, b)
            self.assertEqual(float(state.states[b, :, held:].abs().max()) if held < state.states.shape[2] else 0.0,
                             0.0, b)

        # Gradients through one ragged step, to its inputs and to the carried state.
        st = packed_prefill(seqs[:4], lens[:4])
        xt = [torch.cat([x[j][:, n:n + 1] for x, n in zip(seqs[:4], lens[:4])], 0).detach().requires_grad_()
              for j in range(5)]
        s0 = st.states.detach().requires_grad_()
        # Only the levels each stream holds are state; its padding must stay zero (the op refuses a
        # nonzero one), so the perturbations reach the state through this mask.
        held = torch.zeros_like(s0)
        for b, n in enumerate(lens[:4]):
            held[b, :, :loglinear.num_levels(n) if n else 0] = 1
        torch.autograd.gradcheck(lambda *a: lt.decode_step(*a[:5], lt.LogLinearState(a[5] * held, st.tokens))[0],
                                 (*xt, s0))

    def test_dense_rows_at_different_positions_equal_each_row_alone(self):
        """A dense batch whose rows continue from different token counts (what a ragged decode
        leaves) runs each row as its own sequence: outputs, final states and gradients equal one
        call per row (1e-12); gradcheck through it, the carried state included (masked to the
        levels each row holds: its padding must stay zero)."""
        lens, T, H, G, K, V = [9, 2, 0, 17], 6, 2, 1, 3, 2
        L = loglinear.num_levels(max(lens) + T)
        seqs = [inputs(1, n + T, G, H, K, V, L, seed=80 + i) for i, n in enumerate(lens)]
        state = packed_prefill(seqs, lens)
        x = [torch.cat([s_[j][:, n:] for s_, n in zip(seqs, lens)], 0).requires_grad_() for j in range(5)]
        o, fin = lt.chunk_log_linear_attn(*x, initial_state=state, output_final_state=True)
        self.assertEqual(tuple(o.shape), (len(lens), T, H, V))
        self.assertEqual(fin.tokens.tolist(), [n + T for n in lens])
        w = torch.randn(o.shape, generator=torch.Generator().manual_seed(81), dtype=F64)
        (o * w).sum().backward()
        for b, (s_, n) in enumerate(zip(seqs, lens)):
            xb = [t.detach().requires_grad_() for t in s_]
            ob, fb = lt.chunk_log_linear_attn(*xb, output_final_state=True)
            self.assertLess(rel(o[b:b + 1], ob[:, n:]), 1e-12, b)
            self.assertLess(rel(fin.states[b:b + 1, :, :fb.states.shape[2]], fb.states), 1e-12, b)
            (ob[:, n:] * w[b:b + 1]).sum().backward()
            for name, a, r in zip("q k v g level_scales".split(), x, xb):
                self.assertLess(rel(a.grad[b:b + 1], r.grad[:, n:]), 1e-11, (name, b))
        s0 = state.states.detach().requires_grad_()
        held = torch.zeros_like(s0)
        for b, n in enumerate(lens):
            held[b, :, :loglinear.num_levels(n) if n else 0] = 1
        xs = [t[:, :2].detach().requires_grad_() for t in x]
        torch.autograd.gradcheck(lambda *a: lt.chunk_log_linear_attn(
            *a[:5], initial_state=lt.LogLinearState(a[5] * held, state.tokens))[0], (*xs, s0))

    def test_decoder_in_place_equals_decode_step(self):
        """loglinear.torch.Decoder keeps the state in one buffer of num_levels(max_tokens) levels:
        its outputs and state equal the functional decode_step's, ragged rows (an empty one too)
        included; a step past max_tokens and bad arguments are refused by name."""
        lens, steps, H, G, K, V = [5, 0, 12], 6, 2, 1, 3, 2
        max_tokens = max(lens) + steps
        L = loglinear.num_levels(max_tokens)
        seqs = [inputs(1, n + steps, G, H, K, V, L, seed=90 + i) for i, n in enumerate(lens)]
        state = packed_prefill(seqs, lens)
        dec = lt.Decoder(state, max_tokens)
        self.assertEqual(tuple(dec.states.shape), (len(lens), H, L, K, V))
        ref = state
        for i in range(steps):
            xt = [torch.cat([s_[j][:, n + i:n + i + 1] for s_, n in zip(seqs, lens)], 0) for j in range(5)]
            o_ref, ref = lt.decode_step(*xt, ref)
            self.assertLess(rel(dec.step(*xt), o_ref), 1e-14, i)
        self.assertEqual(dec.tokens.tolist(), ref.tokens.tolist())
        self.assertLess(rel(dec.state.states[:, :, :ref.states.shape[2]], ref.states), 1e-14)
        self.assertEqual(float(dec.states[:, :, ref.states.shape[2]:].abs().sum()), 0.0)
        with self.assertRaisesRegex(ValueError, "^Decoder.step: a stream already holds max_tokens = 18"):
            dec.step(*xt)
        with self.assertRaisesRegex(ValueError, "^max_tokens: expected an int in \\[max\\(state.tokens\\) = 12"):
            lt.Decoder(state, 11)
        with self.assertRaisesRegex(TypeError, "^max_tokens: expected an int"):
            lt.Decoder(state, 20.0)
        with self.assertRaisesRegex(TypeError, "^state: expected a loglinear.torch.LogLinearState"):
            lt.Decoder(state.states, 20)
        with self.assertRaisesRegex(ValueError, "^state.states: expected at least num_levels"):
            lt.Decoder(lt.LogLinearState(state.states[:, :, :2], state.tokens), 20)
        # A state of no levels is cheap to pass, but the buffer follows max_tokens: refused, not allocated.
        huge = lt.empty_state(4096, 4096, 4096, 4096)
        with self.assertRaisesRegex(ValueError, "^max_tokens: a state buffer of shape \\[4096, 4096, 41, 4096, 4096\\]"):
            lt.Decoder(huge, 2 ** 40)

    def test_decode_from_empty_state(self):
        x = inputs(1, 6, 1, 1, 2, 2, loglinear.num_levels(6), seed=13)
        o_all, _ = lt.chunk_log_linear_attn(*x)
        state, outs = lt.empty_state(1, 1, 2, 2), []
        for t in range(6):
            o_t, state = lt.decode_step(*[u[:, t:t + 1] for u in x], state)
            outs.append(o_t)
        self.assertLess(rel(torch.cat(outs, 1), o_all), 1e-12)


class TestErrors(unittest.TestCase):
    def setUp(self):
        self.x = inputs(1, 8, 1, 2, 3, 2, 4, seed=14)

    def check(self, exc, pattern, *args, **kw):
        with self.assertRaisesRegex(exc, pattern):
            lt.chunk_log_linear_attn(*args, **kw)

    def test_named_errors(self):
        q, k, v, g, lam = self.x
        self.check(TypeError, "^q: expected a torch.Tensor", q.numpy(), k, v, g, lam)
        self.check(TypeError, "^q: expected dtype", q.to(torch.bfloat16), k, v, g, lam)
        self.check(ValueError, "^level_scales", q, k, v, g, lam[..., :2])  # L < num_levels(8)
        self.check(ValueError, "^g", q, k, v, -g, lam)  # g > 0
        self.check(ValueError, "^v", q, k, v[:, :5], g, lam)
        self.check(ValueError, "^q", q.expand(1, 8, 1, 3) * float("nan"), k, v, g, lam)
        self.check(ValueError, "^form", q, k, v, g, lam, form="naive")
        self.check(TypeError, "^initial_state: expected a loglinear.torch.LogLinearState", q, k, v, g, lam,
                   initial_state=torch.zeros(1))
        self.check(TypeError, "^cu_seqlens", q, k, v, g, lam, cu_seqlens=torch.tensor([0.0, 8.0]))
        self.check(ValueError, "^cu_seqlens", q, k, v, g, lam, cu_seqlens=torch.tensor([0, 9]))
        self.check(ValueError, "^cu_seqlens", q, k, v, g, lam, cu_seqlens=torch.tensor([0, 4, 4, 8]))
        self.check(NotImplementedError, "^q: a meta tensor", q.to("meta"), k, v, g, lam)

    def test_state_errors(self):
        q, k, v, g, lam = self.x
        _, st = lt.chunk_log_linear_attn(q[:, :3], k[:, :3], v[:, :3], g[:, :3], lam[:, :3], output_final_state=True)
        padded = torch.cat([st.states, torch.ones_like(st.states[:, :, :1])], 2)
        self.check(ValueError, "^initial_state: level 3 of sequence 0 is nonzero", q, k, v, g, lam,
                   initial_state=lt.LogLinearState(padded, st.tokens))
        self.check(ValueError, "^initial_state: expected shape", q, k, v, g, lam,
                   initial_state=lt.LogLinearState(st.states[:, :1], st.tokens))
        self.check(ValueError, "^level_scales", q, k, v, g, lam,  # 3 + 8 tokens need 5 levels; lam has 4
                   initial_state=st)
        two = torch.zeros(2, 2, 0, 3, 2, dtype=F64)
        qq, kk, vv, gg, ll = [torch.cat([t, t]) for t in self.x]
        # Rows at different positions run as packed sequences, whose checks then name the state:
        # a row of 0 tokens holds no level, so a nonzero level 0 there is refused.
        self.check(ValueError, "^initial_state: level 0 of sequence 0 is nonzero", qq, kk, vv, gg, ll,
                   initial_state=lt.LogLinearState(torch.ones(2, 2, 1, 3, 2, dtype=F64), torch.tensor([0, 1])))
        self.check(ValueError, "^initial_tokens: expected token counts", q, k, v, g, lam,
                   initial_state=lt.LogLinearState(two[:1], torch.tensor([-1])))
        with self.assertRaisesRegex(ValueError, "^q_t: expected \\[B,1,G,K\\]"):
            lt.decode_step(q, k, v, g, lam, st)
        one = [t[:, :1] for t in (q, k, v, g, lam)]
        with self.assertRaisesRegex(ValueError, "^state: expected the LogLinearState"):
            lt.decode_step(*one, None)
        with self.assertRaisesRegex(TypeError, "^state: expected a loglinear.torch.LogLinearState"):
            lt.decode_step(*one, st.states)
        with self.assertRaisesRegex(TypeError, "^validate: expected a bool"):
            lt.decode_step(*one, st, validate="yes")


class TestBindingErrors(unittest.TestCase):
    """forward_state / backward_state themselves (NumPy arguments): named errors, never a crash."""

    def setUp(self):
        rng = np.random.default_rng(15)
        self.x = [rng.standard_normal((1, 8, 1, 3)), rng.standard_normal((1, 8, 1, 3)),
                  rng.standard_normal((1, 8, 2, 2)), -rng.random((1, 8, 2)), rng.random((1, 8, 2, 4))]

    def check(self, exc, pattern, fn=loglinear.forward_state, *extra, **kw):
        with self.assertRaisesRegex(exc, pattern):
            fn(*self.x, *extra, **kw)

    def test_errors(self):
        s = np.zeros((1, 2, 2, 3, 2))
        self.check(ValueError, "^initial_state: given without initial_tokens", initial_state=s)
        self.check(ValueError, "^initial_tokens: given without initial_state", initial_tokens=np.array([2]))
        self.check(TypeError, "^initial_tokens: expected an integer array", initial_state=s,
                   initial_tokens=np.array([2.0]))
        self.check(ValueError, "^initial_tokens: expected shape \\(1,\\)", initial_state=s,
                   initial_tokens=np.array([2, 2]))
        self.check(ValueError, "^initial_tokens: expected token counts in \\[0, 2\\*\\*62\\]", initial_state=s,
                   initial_tokens=np.array([2**63 - 1]))
        self.check(ValueError, "^initial_state: expected a 5-D array", initial_state=s[0], initial_tokens=np.array([2]))
        self.check(ValueError, "^initial_state: expected shape", initial_state=s[:, :, :1], initial_tokens=np.array([2]))
        self.check(ValueError, "^initial_state: expected finite", initial_state=s * np.nan, initial_tokens=np.array([2]))
        self.check(TypeError, "^cu_seqlens: expected an integer array", cu_seqlens=np.array([0.0, 8.0]))
        self.check(ValueError, "^cu_seqlens: expected a 1-D array", cu_seqlens=np.array([[0, 8]]))
        self.check(ValueError, "^form: the naive form keeps no state", form="naive")
        self.check(ValueError, "^d_final_state: expected shape", loglinear.backward_state, np.ones((1, 8, 2, 2)),
                   d_final_state=np.ones((1, 2, 1, 3, 2)))
        self.check(ValueError, "^do: expected shape", loglinear.backward_state, np.ones((1, 7, 2, 2)))
        # No state and no packing: the plain call, with an empty final state for T = 0 refused by the form.
        o, fs, ft = loglinear.forward_state(*self.x)
        self.assertEqual(fs.shape, (1, 2, loglinear.num_levels(8), 3, 2))
        self.assertEqual(ft.tolist(), [8])
        self.assertLess(np.abs(o - loglinear.forward(*self.x)).max(), 1e-12)


@unittest.skipUnless(loglinear.has_cuda and not loglinear.cuda_available(),
                     "needs a build with the CUDA backend on a machine without a GPU (CI's), where the CUDA "
                     "bindings' argument handling runs up to the device check")
class TestCudaBindingsWithoutGpu(unittest.TestCase):
    """The pointer lists loglinear.torch passes reach the CUDA API, which then refuses for want of a
    device (not for a malformed list): a binding that miscounts its arguments fails here, in CI,
    instead of on the GPU machine. Fake, aligned pointers: nothing is dereferenced before the
    device check."""

    def test_pointer_lists_reach_the_device_check(self):
        core = lt._core
        shapes = [(1, 8, 1, 4), (1, 8, 1, 4), (1, 8, 2, 4), (1, 8, 2), (1, 8, 2, 4)]
        fake = [4096 * (i + 1) for i in range(8)]
        for ptrs, cu in ((fake[:6], None), (fake[:6], [0, 3, 8]), (fake[:6] + [0, fake[7]], [0, 3, 8])):
            with self.assertRaisesRegex(RuntimeError, "no CUDA device"):
                core._cuda_forward_device(*shapes, 64, "fp32", ptrs, 256, 1 << 30, 0, cu, 0)
        with self.assertRaisesRegex(ValueError, "^ptrs: expected 6 device pointers"):  # a state needs cu here
            core._cuda_forward_device(*shapes, 64, "fp32", fake[:6] + [0, fake[7]], 256, 1 << 30, 0, None, 0)
        with self.assertRaisesRegex(RuntimeError, "no CUDA device"):
            core._cuda_decode_device(2, 2, 1, 4, 4, 3, 3, 2, fake[:7], 0, fake[7])  # ragged
        with self.assertRaisesRegex(RuntimeError, "no CUDA device"):
            core._cuda_decode_device(2, 2, 1, 4, 4, 3, 3, 3, fake[:7], 0, fake[7], True)  # Decoder.step's call
        with self.assertRaisesRegex(RuntimeError, "no CUDA device"):
            core._cuda_decode_device(2, 2, 1, 4, 4, 3, 3, 2, fake[:7], 0)


CUDA = torch.cuda.is_available() and loglinear.has_cuda
NO_CUDA = ("no CUDA device or a build without the CUDA backend: the CUDA tensor tests run on the GPU machine "
           "(bench/RESULTS-gpu.md, issue 15)")


def packed_prefill(seqs, lens, device="cpu", dtype=None):
    """The state of a packed prefill of seqs[b][:, :lens[b]] (cu_seqlens), where a length of 0 is a
    stream with no token yet (packed calls take no empty sequence: its row is inserted as zeros)."""
    live = [b for b, n in enumerate(lens) if n > 0]
    cu = torch.tensor(np.cumsum([0] + [lens[b] for b in live]), device=device)
    packed = [torch.cat([seqs[b][j][:, :lens[b]] for b in live], 1).to(device, dtype) for j in range(5)]
    _, st = lt.chunk_log_linear_attn(*packed, output_final_state=True, cu_seqlens=cu)
    states = torch.zeros((len(lens),) + tuple(st.states.shape[1:]), dtype=st.states.dtype, device=device)
    states[live] = st.states
    return lt.LogLinearState(states, torch.tensor(lens, dtype=torch.int64, device=device))


@contextlib.contextmanager
def counting(owner, name, keep=lambda *a, **kw: True):
    """While the block runs, owner.name is wrapped so that each call for which keep(*args) holds
    appends its positional arguments to the list this yields (which path ran, counted)."""
    real, calls = getattr(owner, name), []

    def wrapper(*a, **kw):
        if keep(*a, **kw):
            calls.append(a)
        return real(*a, **kw)

    setattr(owner, name, wrapper)
    try:
        yield calls
    finally:
        setattr(owner, name, real)


def rel_norm(a, b):
    """Normwise relative error ||a - b|| / ||b|| (the CUDA tests' measure, as in tests/cuda)."""
    a, b = a.detach().cpu().double(), b.detach().cpu().double()
    return float((a - b).norm() / max(b.norm(), 1e-300))


@unittest.skipUnless(CUDA, NO_CUDA)
class TestCuda(unittest.TestCase):
    """CUDA tensors against the float64 CPU op. Tolerances: float32 storage on FFMA kernels <= 1e-4
    normwise for outputs and every gradient (float32 rounding over T <= 300 tokens and log T levels,
    as tests/cuda states for the C++ twins); bf16 storage <= 2e-2 (bf16 keeps 8 bits of mantissa:
    2^-8 = 4e-3 per rounded input, a few of them per product)."""

    def run_pair(self, B, T, G, H, K, V, C, dtype, seed):
        x = inputs(B, T, G, H, K, V, loglinear.num_levels(T) + 1, seed, grad=True)
        xc = [t.detach().to("cuda", dtype if i < 3 else torch.float32).requires_grad_() for i, t in enumerate(x)]
        o, _ = lt.chunk_log_linear_attn(*x, chunk_size=C)
        oc, st = lt.chunk_log_linear_attn(*xc, chunk_size=C)
        self.assertIsNone(st)
        self.assertEqual((oc.device.type, oc.dtype, tuple(oc.shape)), ("cuda", dtype, tuple(o.shape)))
        w = torch.randn(o.shape, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
        (o * w).sum().backward()
        (oc * w.to("cuda", dtype)).sum().backward()
        return o, oc, x, xc

    def test_float32_equals_cpu(self):
        for (B, T, G, H, K, V, C, seed) in [(2, 37, 1, 2, 16, 8, 16, 1), (1, 1, 1, 1, 4, 4, 64, 2),
                                            (1, 300, 2, 4, 32, 64, 64, 3), (3, 65, 1, 3, 8, 5, 8, 4)]:
            o, oc, x, xc = self.run_pair(B, T, G, H, K, V, C, torch.float32, seed)
            self.assertLess(rel_norm(oc.cpu(), o), 1e-4, (B, T, G, H, K, V, C))
            for name, a, b in zip(("dq", "dk", "dv", "dg", "dlam"), xc, x):
                self.assertEqual(a.grad.dtype, a.dtype)
                self.assertLess(rel_norm(a.grad.cpu(), b.grad), 1e-4, (name, B, T, G, H, K, V, C))

    def test_bfloat16_equals_cpu(self):
        for (B, T, G, H, K, V, C, seed) in [(2, 130, 1, 2, 64, 64, 64, 5), (1, 50, 2, 2, 16, 32, 16, 6)]:
            o, oc, x, xc = self.run_pair(B, T, G, H, K, V, C, torch.bfloat16, seed)
            self.assertLess(rel_norm(oc.cpu(), o), 2e-2)
            for name, a, b in zip(("dq", "dk", "dv", "dg", "dlam"), xc, x):
                self.assertLess(rel_norm(a.grad.cpu(), b.grad), 2e-2, name)

    def test_runs_on_the_current_stream(self):
        x = [t.cuda().float() for t in inputs(2, 100, 1, 2, 16, 16, 8, seed=7)]
        ref, _ = lt.chunk_log_linear_attn(*x)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            o, _ = lt.chunk_log_linear_attn(*x)
        side.synchronize()
        self.assertEqual(float((o - ref).abs().max()), 0.0)  # same kernels, same inputs: bit for bit

    def test_errors(self):
        q, k, v, g, lam = [t.cuda().float() for t in inputs(1, 8, 1, 2, 4, 4, 4, seed=8)]
        with self.assertRaisesRegex(ValueError, "^k: expected a tensor on cuda"):
            lt.chunk_log_linear_attn(q, k.cpu(), v, g, lam)
        with self.assertRaisesRegex(TypeError, "^q: expected dtype torch.float32 or torch.bfloat16 on the GPU"):
            lt.chunk_log_linear_attn(q.double(), k, v, g, lam)
        with self.assertRaisesRegex(ValueError, "^v: expected finite values"):
            lt.chunk_log_linear_attn(q, k, v * float("nan"), g, lam)
        with self.assertRaisesRegex(ValueError, "^g: expected log-decay values <= 0"):
            lt.chunk_log_linear_attn(q, k, v, -g, lam)
        with self.assertRaisesRegex(ValueError, "^level_scales"):
            lt.chunk_log_linear_attn(q, k, v, g, lam[..., :2])
        with self.assertRaisesRegex(ValueError, "^cu_seqlens: expected strictly increasing offsets"):
            lt.chunk_log_linear_attn(q, k, v, g, lam, cu_seqlens=torch.tensor([0, 3, 3, 8], device="cuda"))
        _, st = lt.chunk_log_linear_attn(q, k, v, g, lam, output_final_state=True)
        with self.assertRaisesRegex(ValueError, r"^initial_state.tokens: expected shape \(1,\)"):
            lt.chunk_log_linear_attn(q, k, v, g, lam, initial_state=lt.LogLinearState(st.states, st.tokens.repeat(2)))
        # A dense batch whose rows hold different token counts runs as packed sequences; a count
        # that the state's levels cannot hold is refused there, naming the state.
        q2, k2, v2, g2, lam2 = [t.cuda().float() for t in inputs(2, 8, 1, 2, 4, 4, 5, seed=9)]
        _, st = lt.chunk_log_linear_attn(q2, k2, v2, g2, lam2, output_final_state=True)
        uneven = lt.LogLinearState(st.states, torch.tensor([8, 20], device="cuda"))  # 20 tokens: 6 levels, not 4
        with self.assertRaisesRegex(ValueError, "^initial_state"):
            lt.chunk_log_linear_attn(q2, k2, v2, g2, lam2, initial_state=uneven)
        with self.assertRaisesRegex(ValueError, "^form: the CUDA kernels implement"):
            lt.chunk_log_linear_attn(q, k, v, g, lam, form="recurrent")


@unittest.skipUnless(CUDA, NO_CUDA)
class TestCudaState(unittest.TestCase):
    """The carried state on CUDA tensors (issue 15 item 3) against the float64 CPU op: a call that
    continues a state and returns the final one, every gradient including the initial state's;
    continuation and decoding on the GPU equal one GPU call. Tolerances as TestCuda (float32 <=
    1e-4 normwise against float64; two float32 GPU computations of the same sums <= 1e-5)."""

    def test_float32_state_equals_cpu(self):
        for (B, T0, T, G, H, K, V, C, seed) in [(2, 5, 40, 1, 2, 16, 8, 16, 21), (1, 64, 100, 2, 2, 32, 16, 64, 22),
                                                (1, 1, 1, 1, 1, 4, 4, 64, 23), (2, 77, 30, 1, 3, 8, 12, 32, 24)]:
            L = loglinear.num_levels(T0 + T) + 1
            pre = inputs(B, T0, G, H, K, V, L, seed)
            _, st = lt.chunk_log_linear_attn(*pre, output_final_state=True)
            x = inputs(B, T, G, H, K, V, L, seed + 100, grad=True)
            s0 = st.states.clone().requires_grad_()
            o, fin = lt.chunk_log_linear_attn(*x, initial_state=lt.LogLinearState(s0, st.tokens), chunk_size=C,
                                              output_final_state=True)
            xc = [t.detach().to("cuda", torch.float32).requires_grad_() for t in x]
            s0c = st.states.detach().to("cuda", torch.float32).requires_grad_()
            oc, finc = lt.chunk_log_linear_attn(*xc, initial_state=lt.LogLinearState(s0c, st.tokens.cuda()),
                                                chunk_size=C, output_final_state=True)
            case = (B, T0, T, G, H, K, V, C)
            self.assertEqual(finc.tokens.tolist(), [T0 + T] * B)
            self.assertLess(rel_norm(oc.cpu(), o), 1e-4, case)
            self.assertLess(rel_norm(finc.states.cpu(), fin.states), 1e-4, case)
            gen = torch.Generator().manual_seed(seed + 1)
            w, wf = torch.randn(o.shape, generator=gen, dtype=F64), torch.randn(fin.states.shape, generator=gen, dtype=F64)
            ((o * w).sum() + (fin.states * wf).sum()).backward()
            ((oc * w.cuda().float()).sum() + (finc.states * wf.cuda().float()).sum()).backward()
            for name, a, b in zip(("dq", "dk", "dv", "dg", "dlam", "d_initial"), (*xc, s0c), (*x, s0)):
                self.assertLess(rel_norm(a.grad.cpu(), b.grad), 1e-4, (name, case))

    def test_bfloat16_state_equals_cpu(self):
        """bf16 inputs with a float32 state: o, the final states and every gradient (the initial
        state's too) against the float64 CPU op, <= 2e-2 normwise (bf16's 8-bit mantissa: 3.3e-3
        measured for the stateless op, bench/RESULTS-gpu.md)."""
        B, T0, T, G, H, K, V = 1, 64, 130, 1, 2, 64, 64
        L = loglinear.num_levels(T0 + T)
        _, st = lt.chunk_log_linear_attn(*inputs(B, T0, G, H, K, V, L, 31), output_final_state=True)
        x = inputs(B, T, G, H, K, V, L, 32, grad=True)
        s0 = st.states.clone().requires_grad_()
        o, fin = lt.chunk_log_linear_attn(*x, initial_state=lt.LogLinearState(s0, st.tokens), output_final_state=True)
        xc = [t.detach().to("cuda", torch.bfloat16 if i < 3 else torch.float32).requires_grad_()
              for i, t in enumerate(x)]
        s0c = st.states.detach().cuda().float().requires_grad_()
        oc, finc = lt.chunk_log_linear_attn(*xc, initial_state=lt.LogLinearState(s0c, st.tokens.cuda()),
                                            output_final_state=True)
        self.assertEqual((oc.dtype, finc.states.dtype), (torch.bfloat16, torch.float32))
        self.assertLess(rel_norm(oc.cpu(), o), 2e-2)
        self.assertLess(rel_norm(finc.states.cpu(), fin.states), 2e-2)
        gen = torch.Generator().manual_seed(33)
        w, wf = torch.randn(o.shape, generator=gen, dtype=F64), torch.randn(fin.states.shape, generator=gen, dtype=F64)
        ((o * w).sum() + (fin.states * wf).sum()).backward()
        ((oc.float() * w.cuda().float()).sum() + (finc.states * wf.cuda().float()).sum()).backward()
        for name, a, b in zip(("dq", "dk", "dv", "dg", "dlam", "d_initial"), (*xc, s0c), (*x, s0)):
            self.assertLess(rel_norm(a.grad.cpu(), b.grad), 2e-2, name)

    def test_packed_equals_cpu(self):
        x, s0, T0, cu, o, fin, states = packed_case(50)
        xc = [t.detach().to("cuda", torch.float32).requires_grad_() for t in x]
        s0c = states.to("cuda", torch.float32).requires_grad_()
        oc, finc = lt.chunk_log_linear_attn(*xc, initial_state=lt.LogLinearState(s0c, T0.cuda()),
                                            cu_seqlens=cu.cuda(), chunk_size=8, output_final_state=True)
        self.assertEqual(finc.tokens.tolist(), fin.tokens.tolist())  # [7, 4, 84, 14]
        self.assertLess(rel_norm(oc.cpu(), o), 1e-4)
        self.assertEqual(tuple(finc.states.shape), tuple(fin.states.shape))
        self.assertLess(rel_norm(finc.states.cpu(), fin.states), 1e-4)
        gen = torch.Generator().manual_seed(52)
        w, wf = torch.randn(o.shape, generator=gen, dtype=F64), torch.randn(fin.states.shape, generator=gen, dtype=F64)
        ((o * w).sum() + (fin.states * wf).sum()).backward()
        ((oc * w.cuda().float()).sum() + (finc.states * wf.cuda().float()).sum()).backward()
        for name, a, b in zip(("dq", "dk", "dv", "dg", "dlam", "d_initial"), (*xc, s0c), (*x, s0)):
            self.assertLess(rel_norm(a.grad.cpu(), b.grad), 1e-4, name)

    def test_packed_without_state_both_gpu_paths_equal_cpu(self):
        """Packed sequences with no state: lengths of similar size run one varlen kernel call
        (forward and backward, no per-sequence stateful call); lengths too uneven for its grid run
        one call per sequence. Both against the float64 CPU op (float32 <= 1e-4 normwise, bf16 on
        the tensor cores <= 1e-2), forward and every gradient."""
        # The forward binding with cu_seqlens given (argument 11) is the varlen kernel call.
        with counting(lt, "_stateful_cuda") as stateful, \
                counting(lt._core, "_cuda_forward_device", lambda *a, **kw: a[11] is not None) as varlen:
            for lens, dtype, K, per_sequence in (([9, 16, 12, 5], torch.float32, 8, 0),
                                                 ([64, 65, 3, 130], torch.bfloat16, 16, 0),
                                                 ([1, 1, 1, 1, 1, 700], torch.float32, 8, 6)):
                stateful.clear(); varlen.clear()
                cu = torch.tensor(np.cumsum([0] + lens))
                T = sum(lens)
                x = inputs(1, T, 1, 2, K, 16, loglinear.num_levels(max(lens)) + 1, seed=65, grad=True)
                o, _ = lt.chunk_log_linear_attn(*x, cu_seqlens=cu, chunk_size=16)
                xc = [t.detach().to("cuda", dtype if i < 3 else torch.float32).requires_grad_()
                      for i, t in enumerate(x)]
                oc, fin = lt.chunk_log_linear_attn(*xc, cu_seqlens=cu.cuda(), chunk_size=16)
                self.assertIsNone(fin)
                self.assertEqual(len(stateful), per_sequence, lens)
                self.assertEqual(len(varlen), 0 if per_sequence else 1, lens)
                bound = 1e-4 if dtype == torch.float32 else 1e-2
                self.assertLess(rel_norm(oc, o), bound, lens)
                w = torch.randn(o.shape, generator=torch.Generator().manual_seed(66), dtype=F64)
                (o * w).sum().backward()
                (oc * w.cuda().to(oc.dtype)).sum().backward()
                for name, a, b in zip(("dq", "dk", "dv", "dg", "dlam"), xc, x):
                    self.assertLess(rel_norm(a.grad, b.grad), bound, (name, lens))

    def test_packed_prefill_returns_final_states_in_one_call(self):
        """A packed prefill without gradient (prompts of different lengths, output_final_state) runs
        one varlen kernel call that also writes every sequence's final state (no per-sequence
        stateful call); float32 and bf16 against the float64 CPU op (o: 1e-4 / 1e-2; the states
        are float32 sums of k v^T products: 1e-4 in both). With a gradient wanted the call takes
        one stateful call per sequence, and its final states agree (1e-5)."""
        # The forward binding with cu_seqlens (argument 11) and a final-state pointer (8 pointers).
        with counting(lt, "_stateful_cuda") as stateful, \
                counting(lt._core, "_cuda_forward_device",
                         lambda *a, **kw: a[11] is not None and len(a[7]) == 8) as varlen_final:
            for lens, dtype, K, C in (([9, 16, 1, 12, 5], torch.float32, 8, 4),
                                      ([64, 65, 3, 130], torch.bfloat16, 16, 64)):
                stateful.clear(); varlen_final.clear()
                cu = torch.tensor(np.cumsum([0] + lens))
                x = inputs(1, sum(lens), 2, 4, K, 16, loglinear.num_levels(max(lens)) + 1, seed=67)
                o, fin = lt.chunk_log_linear_attn(*x, cu_seqlens=cu, chunk_size=C, output_final_state=True)
                xc = [t.to("cuda", dtype if i < 3 else torch.float32) for i, t in enumerate(x)]
                with torch.no_grad():
                    oc, finc = lt.chunk_log_linear_attn(*xc, cu_seqlens=cu.cuda(), chunk_size=C,
                                                        output_final_state=True)
                self.assertEqual((len(stateful), len(varlen_final)), (0, 1), lens)
                bound = 1e-4 if dtype == torch.float32 else 1e-2
                self.assertLess(rel_norm(oc, o), bound, lens)
                self.assertEqual(finc.tokens.tolist(), lens)
                self.assertEqual(tuple(finc.states.shape), tuple(fin.states.shape), lens)
                # The CPU op on the bf16-rounded inputs, for the states of the bf16 run.
                ref = fin if dtype == torch.float32 else lt.chunk_log_linear_attn(
                    *[t.to(dtype).double() if i < 3 else t for i, t in enumerate(x)], cu_seqlens=cu, chunk_size=C,
                    output_final_state=True)[1]
                self.assertLess(rel_norm(finc.states, ref.states), 1e-4, lens)
                stateful.clear(); varlen_final.clear()
                xg = [t.detach().requires_grad_() for t in xc]
                _, fing = lt.chunk_log_linear_attn(*xg, cu_seqlens=cu.cuda(), chunk_size=C, output_final_state=True)
                self.assertEqual((len(stateful), len(varlen_final)), (len(lens), 0), lens)
                self.assertLess(rel_norm(finc.states, fing.states), 1e-5, lens)

    def test_zero_token_state_with_padding(self):
        """A state of 0 tokens (levels all padding) equals no state, and its gradient is zero."""
        x = [t.to("cuda", torch.float32) for t in inputs(1, 20, 1, 2, 4, 4, loglinear.num_levels(20), 71)]
        o_ref, _ = lt.chunk_log_linear_attn(*x)
        s0 = torch.zeros(1, 2, 3, 4, 4, device="cuda", requires_grad=True)
        o, _ = lt.chunk_log_linear_attn(*x, initial_state=lt.LogLinearState(s0, torch.zeros(1, dtype=torch.int64,
                                                                                              device="cuda")))
        self.assertLess(rel_norm(o, o_ref), 1e-6)  # the same kernels in the same order
        o.sum().backward()
        self.assertEqual(tuple(s0.grad.shape), (1, 2, 3, 4, 4))
        self.assertEqual(float(s0.grad.abs().max()), 0.0)

    def test_split_and_decode_equal_one_gpu_call(self):
        B, T, G, H, K, V = 2, 90, 1, 2, 16, 8
        x = [t.to("cuda", torch.float32) for t in inputs(B, T, G, H, K, V, loglinear.num_levels(T), 41)]
        o_all, fin_all = lt.chunk_log_linear_attn(*x, output_final_state=True)
        for split in (1, 33, 64):
            o1, st = lt.chunk_log_linear_attn(*[t[:, :split] for t in x], output_final_state=True)
            o2, fin = lt.chunk_log_linear_attn(*[t[:, split:] for t in x], initial_state=st, output_final_state=True)
            self.assertLess(rel_norm(torch.cat([o1, o2], 1), o_all), 1e-5, split)
            self.assertLess(rel_norm(fin.states, fin_all.states), 1e-5, split)
        o, state = lt.chunk_log_linear_attn(*[t[:, :50] for t in x], output_final_state=True)
        outs = [o]
        for t in range(50, T):
            o_t, state = lt.decode_step(*[u[:, t:t + 1] for u in x], state)
            outs.append(o_t)
        self.assertEqual(state.tokens.tolist(), [T] * B)
        self.assertLess(rel_norm(torch.cat(outs, 1), o_all), 1e-5)

    def test_device_decode_equals_cpu_and_the_differentiable_step(self):
        """decode_step with no gradient wanted runs the device decoding kernels (counted through a
        wrapper of the binding); with one, the chunked kernels. Both against the float64 CPU op
        (float32 <= 1e-4 normwise, as TestCuda) and each other (<= 1e-5); bf16 inputs too (the
        decoding kernels compute in float32 on the exactly converted values: <= 1e-2, bf16 o)."""
        B, T, G, H, K, V, P = 2, 75, 2, 4, 16, 24, 33
        x64 = inputs(B, T, G, H, K, V, loglinear.num_levels(T) + 1, 43)
        o_ref, fin_ref = lt.chunk_log_linear_attn(*x64, output_final_state=True)
        with counting(lt._core, "_cuda_decode_device") as launches:
            for dtype, bound in ((torch.float32, 1e-4), (torch.bfloat16, 1e-2)):
                x = [t.to("cuda", dtype if i < 3 else torch.float32) for i, t in enumerate(x64)]
                _, st = lt.chunk_log_linear_attn(*[t[:, :P] for t in x], output_final_state=True)
                launches.clear()
                fast, grad = [], []
                st_fast = st_grad = st
                for t in range(P, T):
                    xt = [u[:, t:t + 1] for u in x]
                    with torch.no_grad():
                        o_t, st_fast = lt.decode_step(*xt, st_fast)
                    fast.append(o_t)
                    o_t, st_grad = lt.decode_step(*[u.detach().requires_grad_() for u in xt], st_grad)
                    grad.append(o_t)
                self.assertEqual([a[7] for a in launches], list(range(P, T)),  # a[7]: the token count
                                 "the no-grad steps ran the device decoding kernels")
                o_fast, o_grad = torch.cat(fast, 1), torch.cat(grad, 1)
                self.assertEqual(o_fast.dtype, dtype)
                self.assertLess(rel_norm(o_fast, o_ref[:, P:]), bound, dtype)
                self.assertLess(rel_norm(o_grad, o_ref[:, P:]), bound, dtype)
                self.assertEqual(st_fast.tokens.tolist(), [T] * B)
                self.assertLess(rel_norm(st_fast.states, fin_ref.states), bound, dtype)
                if dtype == torch.float32:
                    self.assertLess(rel_norm(o_fast, o_grad), 1e-5)
                    self.assertLess(rel_norm(st_fast.states, st_grad.states), 1e-5)
                self.assertTrue(o_grad.requires_grad)
                self.assertFalse(o_fast.requires_grad)
            with self.assertRaisesRegex(ValueError, "^level_scales"):
                with torch.no_grad():
                    lt.decode_step(*[u[:, P:P + 1] for u in x[:4]], x[4][:, P:P + 1, :, :2], st)
            with self.assertRaisesRegex(ValueError, "^g: expected log-decay values <= 0"):
                with torch.no_grad():
                    lt.decode_step(*[u[:, P:P + 1] for u in x[:3]], -x[3][:, P:P + 1], x[4][:, P:P + 1], st)
            with self.assertRaisesRegex(TypeError, "^q: expected dtype torch.float32 or torch.bfloat16 on the GPU"):
                with torch.no_grad():
                    lt.decode_step(*[u[:, P:P + 1].double() for u in x], st)

    def test_ragged_device_decode_equals_cpu(self):
        """Streams at different positions after a packed GPU prefill (one of them empty) decode in
        one launch a token (the device kernel with each stream's count, counted through the
        binding) and equal the float64 CPU op's ragged decode (float32 <= 1e-4 normwise); the
        differentiable CUDA step (one call per stream) agrees with it (<= 1e-5)."""
        lens, steps, G, H, K, V = [37, 5, 64, 0, 1], 9, 1, 4, 16, 24
        L = loglinear.num_levels(max(lens) + steps) + 1
        seqs = [inputs(1, n + steps, G, H, K, V, L, seed=70 + i) for i, n in enumerate(lens)]
        steps_in = [[torch.cat([x[j][:, n + i:n + i + 1] for x, n in zip(seqs, lens)], 0) for j in range(5)]
                    for i in range(steps)]
        st_ref = packed_prefill(seqs, lens)
        ref = []
        for xt in steps_in:
            o_t, st_ref = lt.decode_step(*xt, st_ref)
            ref.append(o_t)
        with counting(lt._core, "_cuda_decode_device") as launches:
            st_fast = st_grad = packed_prefill(seqs, lens, "cuda", torch.float32)
            fast, grad = [], []
            for xt in steps_in:
                xt = [t.to("cuda", torch.float32) for t in xt]
                with torch.no_grad():
                    o_t, st_fast = lt.decode_step(*xt, st_fast)
                fast.append(o_t)
                o_t, st_grad = lt.decode_step(*[u.requires_grad_() for u in xt], st_grad)
                grad.append(o_t)
        calls = [(a[7], a[10] is not None) for a in launches]  # the largest count; a ragged launch
        self.assertEqual(calls, [(max(lens) + i, True) for i in range(steps)], "one ragged launch a token")
        o_ref = torch.cat(ref, 1)
        self.assertLess(rel_norm(torch.cat(fast, 1), o_ref), 1e-4)
        self.assertLess(rel_norm(torch.cat(grad, 1), o_ref), 1e-4)
        self.assertLess(rel_norm(torch.cat(fast, 1), torch.cat(grad, 1)), 1e-5)
        self.assertEqual(st_fast.tokens.tolist(), [n + steps for n in lens])
        held = st_ref.states.shape[2]
        self.assertLess(rel_norm(st_fast.states[:, :, :held], st_ref.states), 1e-4)
        self.assertEqual(float(st_fast.states[:, :, held:].abs().max()) if st_fast.states.shape[2] > held else 0.0, 0.0)

    def test_decoder_in_place_and_in_a_cuda_graph(self):
        """The in-place Decoder on the GPU (ragged rows, counts on the device, none read on the
        host) equals the functional decode_step (<= 1e-6: the same kernel) and the float64 CPU op
        (<= 1e-4); one step captured in a CUDA graph and replayed per token continues it equally;
        a stream that holds the most tokens its levels allow gets NaN and keeps state and count."""
        lens, steps, G, H, K, V = [37, 5, 64, 0, 1], 6, 1, 4, 16, 24
        max_tokens = max(lens) + 2 * steps
        L = loglinear.num_levels(max_tokens)
        seqs = [inputs(1, n + 2 * steps, G, H, K, V, L, seed=95 + i) for i, n in enumerate(lens)]
        tokens_in = [[torch.cat([s_[j][:, n + i:n + i + 1] for s_, n in zip(seqs, lens)], 0) for j in range(5)]
                     for i in range(2 * steps)]
        st_ref, ref = packed_prefill(seqs, lens), []
        for xt in tokens_in:
            o, st_ref = lt.decode_step(*xt, st_ref)
            ref.append(o)
        func = packed_prefill(seqs, lens, "cuda", torch.float32)
        dec = lt.Decoder(func, max_tokens)
        out, out_func = [], []
        with torch.no_grad():
            for xt in tokens_in[:steps]:
                xt = [t.to("cuda", torch.float32) for t in xt]
                out.append(dec.step(*xt))
                o, func = lt.decode_step(*xt, func)
                out_func.append(o)
            static = [t.to("cuda", torch.float32) for t in tokens_in[steps]]
            torch.cuda.synchronize()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):  # records one step; nothing runs until replay
                static_o = dec.step(*static)
            self.assertEqual(dec.tokens.tolist(), [n + steps for n in lens])
            for xt in tokens_in[steps:]:
                for dst, src in zip(static, xt):
                    dst.copy_(src)
                graph.replay()
                out.append(static_o.clone())
                o, func = lt.decode_step(*[t.to("cuda", torch.float32) for t in xt], func)
                out_func.append(o)
        torch.cuda.synchronize()
        self.assertEqual(dec.tokens.tolist(), [n + 2 * steps for n in lens])
        self.assertLess(rel_norm(torch.cat(out, 1), torch.cat(out_func, 1)), 1e-6)
        self.assertLess(rel_norm(torch.cat(out, 1), torch.cat(ref, 1)), 1e-4)
        held = st_ref.states.shape[2]
        self.assertLess(rel_norm(dec.states[:, :, :held], st_ref.states), 1e-4)

        # The most tokens the levels hold: max_tokens = 4 gives 3 levels, 4 tokens; the step from
        # 4 tokens is NaN and changes nothing.
        x = [t.to("cuda", torch.float32) for t in inputs(1, 6, 1, 2, 4, 4, 3, seed=99)]
        _, st = lt.chunk_log_linear_attn(*[t[:, :3] for t in x], output_final_state=True)
        small = lt.Decoder(st, 4)
        with torch.no_grad():
            self.assertFalse(bool(torch.isnan(small.step(*[t[:, 3:4] for t in x])).any()))
            before = small.states.clone()
            self.assertTrue(bool(torch.isnan(small.step(*[t[:, 4:5] for t in x])).all()))
        self.assertEqual(small.tokens.tolist(), [4])
        self.assertTrue(torch.equal(small.states, before))
        with self.assertRaisesRegex(ValueError, "^k_t: expected shape"):
            small.step(x[0][:, :1], x[1][:, :2], *[t[:, :1] for t in x[2:]])


@unittest.skipUnless(lt.HAS_CUSTOM_OP, f"torch {torch.__version__} has no torch.library.custom_op (torch >= 2.4): "
                     "the custom-op tests run on the GPU machine's torch (bench/RESULTS-gpu.md, issue 15)")
class TestCustomOp(unittest.TestCase):
    """The stateless call as torch.ops.loglinear.chunk_log_linear_attn, and the calls with a state or
    packed sequences as torch.ops.loglinear.chunk_log_linear_attn_state (what torch.compile traces):
    opcheck (schema, fake tensor, autograd registration) and torch.compile(fullgraph=True), i.e.
    traced with no graph break, equal to eager mode (outputs and every gradient, <= 1e-6: the same
    kernels, summed in the same order, up to the compiled graph's own elementwise ops)."""

    def devices(self):
        return ["cpu", "cuda"] if CUDA else ["cpu"]

    def test_opcheck(self):
        for dev in self.devices():
            dtype = F64 if dev == "cpu" else torch.float32
            x = [t.to(dev, dtype).requires_grad_() for t in inputs(1, 20, 1, 2, 4, 4, loglinear.num_levels(20), seed=9)]
            torch.library.opcheck(torch.ops.loglinear.chunk_log_linear_attn.default, (*x, "chunked", 8, True))

    def test_compile_fullgraph_equals_eager(self):
        for dev in self.devices():
            dtype = F64 if dev == "cpu" else torch.float32
            x = [t.to(dev, dtype) for t in inputs(2, 33, 1, 2, 4, 4, loglinear.num_levels(33), seed=10)]

            def f(q, k, v, g, lam):
                return lt.chunk_log_linear_attn(torch.nn.functional.normalize(q, dim=-1), k, v, g, lam,
                                                chunk_size=16)[0].square().sum()
            xe = [t.clone().requires_grad_() for t in x]
            xc = [t.clone().requires_grad_() for t in x]
            eager = f(*xe)
            eager.backward()
            compiled = torch.compile(f, backend="aot_eager", fullgraph=True)(*xc)
            compiled.backward()
            self.assertLess(rel(compiled.detach(), eager.detach()), 1e-6)
            for a, b in zip(xc, xe):
                self.assertLess(rel(a.grad, b.grad), 1e-6)

    def test_opcheck_state(self):
        for dev in self.devices():
            dtype = F64 if dev == "cpu" else torch.float32
            L = loglinear.num_levels(30)
            _, st = lt.chunk_log_linear_attn(*[t.to(dev, dtype) for t in inputs(2, 10, 1, 2, 4, 4, L, seed=11)],
                                             output_final_state=True)
            x = [t.to(dev, dtype).requires_grad_() for t in inputs(2, 20, 1, 2, 4, 4, L, seed=12)]
            s0 = st.states.detach().clone().requires_grad_()
            torch.library.opcheck(torch.ops.loglinear.chunk_log_linear_attn_state.default,
                                  (*x, s0, st.tokens, None, True, "chunked", 8, True))

    def test_compile_fullgraph_with_state_and_packing_equals_eager(self):
        """A call that continues a state and returns the final one, and a packed call (cu_seqlens)
        with a returned state: compiled with fullgraph=True (any graph break fails), against eager."""
        for dev in self.devices():
            dtype = F64 if dev == "cpu" else torch.float32
            L = loglinear.num_levels(60) + 1
            _, st = lt.chunk_log_linear_attn(*[t.to(dev, dtype) for t in inputs(2, 13, 1, 2, 4, 4, L, seed=13)],
                                             output_final_state=True)
            x = [t.to(dev, dtype) for t in inputs(2, 29, 1, 2, 4, 4, L, seed=14)]
            xp = [t.to(dev, dtype) for t in inputs(1, 45, 1, 2, 4, 4, L, seed=15)]
            cu = torch.tensor([0, 7, 8, 45], device=dev)

            def f(q, k, v, g, lam, s0, qp, kp, vp, gp, lamp):
                o, fin = lt.chunk_log_linear_attn(q, k, v, g, lam, initial_state=lt.LogLinearState(s0, st.tokens),
                                                  output_final_state=True, chunk_size=8)
                op, finp = lt.chunk_log_linear_attn(qp, kp, vp, gp, lamp, output_final_state=True, cu_seqlens=cu,
                                                    chunk_size=8)
                return o.square().sum() + fin.states.sum() + op.square().sum() + finp.states.square().sum()

            args = [*x, st.states, *xp]
            ae = [t.clone().requires_grad_() for t in args]
            ac = [t.clone().requires_grad_() for t in args]
            eager = f(*ae)
            eager.backward()
            compiled = torch.compile(f, backend="aot_eager", fullgraph=True)(*ac)
            compiled.backward()
            self.assertLess(rel(compiled.detach(), eager.detach()), 1e-6, dev)
            for i, (a, b) in enumerate(zip(ac, ae)):
                self.assertLess(rel(a.grad, b.grad), 1e-6, (dev, i))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    unittest.main()

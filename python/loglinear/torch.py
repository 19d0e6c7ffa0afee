"""PyTorch op of log-linear attention: ``chunk_log_linear_attn``, a drop-in for
``fla.ops.log_linear_attn.chunk_log_linear_attn`` with the same argument order, layouts and return,
plus ``decode_step`` for streaming generation.

    from loglinear.torch import chunk_log_linear_attn      # instead of fla.ops.log_linear_attn
    o, state = chunk_log_linear_attn(q, k, v, g, level_scales, output_final_state=True)

Layouts (fla's): q, k ``[B,T,G,K]`` with any G dividing H (fla: G = 1 or G = H); v ``[B,T,H,V]``;
g ``[B,T,H]`` (log decay, <= 0); level_scales ``[B,T,H,L]`` with L >= num_levels(tokens + T).
Packed sequences: B = 1 and ``cu_seqlens`` int64 ``[S+1]`` offsets (FlashAttention convention);
each sequence starts its own Fenwick tree, and chunks are aligned to every sequence start (a
chunk never crosses a sequence boundary: docs of ``loglinear.forward_state``).

Autograd: a ``torch.autograd.Function`` whose backward is the library's handwritten backward (no
autograd through internals); gradients reach q, k, v, g, level_scales and the initial state.

Where it runs (this version):
- CPU tensors, float32 or float64: the C++ reference chunked form (``form="recurrent"`` selects
  the recurrent one). Contiguous tensors are passed to C++ without a copy (``Tensor.numpy()``
  shares memory), and outputs come back the same way.
- CUDA tensors: not yet (the CUDA kernels do not take a state or ``cu_seqlens`` yet, and the op
  does not yet run them on torch's stream): a ``NotImplementedError`` says so.
- ``torch.library`` registration (for ``torch.compile`` without graph breaks) is not done yet.

Errors: a bad argument raises the library's ``ValueError`` / ``TypeError``, naming the argument by
this op's names (``level_scales``, not the C++ API's ``lam``).
"""
from __future__ import annotations

import re
from typing import NamedTuple, Optional, Tuple

import numpy as np
import torch

from . import _loglinear as _core

__all__ = ["LogLinearState", "chunk_log_linear_attn", "decode_step", "empty_state"]


class LogLinearState(NamedTuple):
    """The carried state of log-linear attention: every sequence's Fenwick-tree level states.

    ``states`` ``[N,H,L,K,V]`` (the inputs' dtype and device) and ``tokens`` ``[N]`` (int64), one
    row per sequence: N = B for a dense batch, the number of sequences with ``cu_seqlens``.
    ``states[i, h, l]`` is level l's K x V state of sequence i, head h, after ``tokens[i]`` tokens
    (SPEC.md section 4: the sum over the tokens s of level l's bucket of
    ``exp(g_{s+1} + ... + g_last) k_s v_s^T``). Sequence i has ``num_levels(tokens[i])`` levels
    (none after 0 tokens); levels above that are zero padding, so sequences of different lengths
    share one tensor. A dense batch has one token count for all of its rows.
    """

    states: torch.Tensor
    tokens: torch.Tensor


def empty_state(N: int, H: int, K: int, V: int, dtype=torch.float64, device="cpu") -> LogLinearState:
    """The state of N sequences before any token: ``states`` [N,H,0,K,V], ``tokens`` all zero."""
    return LogLinearState(torch.zeros(N, H, 0, K, V, dtype=dtype, device=device),
                          torch.zeros(N, dtype=torch.int64, device=device))


# The C++ API's argument names that this op calls otherwise, for the messages.
_RENAMES = {"lam": "level_scales", "do": "the gradient of o"}


def _renamed(e: Exception) -> Exception:
    msg = str(e)
    m = re.match(r"(lam|do)\b", msg)
    if m:
        msg = _RENAMES[m.group(1)] + msg[m.end():]
    return type(e)(msg)


def _check_tensor(name: str, x, allow_none: bool = False):
    if x is None and allow_none:
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.device.type != "cpu":
        raise NotImplementedError(
            f"{name}: a {x.device.type} tensor; this version of loglinear.torch runs on CPU tensors only "
            "(the CUDA path of the op, with state and cu_seqlens, is not written yet): call .cpu() first")


def _working_dtype(q: torch.Tensor) -> torch.dtype:
    if q.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"q: expected dtype torch.float32 or torch.float64 on the CPU, got {q.dtype} "
                        "(bf16 runs on the GPU only; convert with .float() or .double())")
    return q.dtype


def _np(x: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """A NumPy view of x in dtype: no copy when x is contiguous and already of that dtype."""
    return x.detach().to(dtype).contiguous().numpy()


class _ChunkLogLinearAttn(torch.autograd.Function):
    """o, final states = the forward of loglinear.forward_state; backward = backward_state."""

    @staticmethod
    def forward(ctx, q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens, form, chunk_size):
        dtype = q.dtype
        arrays = [_np(x, dtype) for x in (q, k, v, g, level_scales)]
        init = (None, None) if init_states is None else (_np(init_states, dtype), init_tokens.detach().numpy())
        cu = None if cu_seqlens is None else cu_seqlens.detach().numpy()
        try:
            o, fin_states, fin_tokens = _core.forward_state(*arrays, initial_state=init[0], initial_tokens=init[1],
                                                            cu_seqlens=cu, form=form, chunk_size=chunk_size)
        except (ValueError, TypeError) as e:
            raise _renamed(e) from None
        ctx.save_for_backward(q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens)
        ctx.form, ctx.chunk_size = form, chunk_size
        ctx.set_materialize_grads(False)
        fin_tokens = torch.from_numpy(fin_tokens)
        ctx.mark_non_differentiable(fin_tokens)
        return torch.from_numpy(o), torch.from_numpy(fin_states), fin_tokens

    @staticmethod
    def backward(ctx, d_o, d_fin_states, _d_fin_tokens):
        q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens = ctx.saved_tensors
        dtype = q.dtype
        if d_o is None:
            d_o = torch.zeros(v.shape, dtype=dtype)
        arrays = [_np(x, dtype) for x in (q, k, v, g, level_scales)]
        init = (None, None) if init_states is None else (_np(init_states, dtype), init_tokens.numpy())
        try:
            grads = _core.backward_state(
                *arrays, _np(d_o, dtype), initial_state=init[0], initial_tokens=init[1],
                cu_seqlens=None if cu_seqlens is None else cu_seqlens.numpy(),
                d_final_state=None if d_fin_states is None else _np(d_fin_states, dtype),
                form=ctx.form, chunk_size=ctx.chunk_size)
        except (ValueError, TypeError) as e:
            raise _renamed(e) from None
        out = [torch.from_numpy(grads[n]).to(x.dtype)
               for n, x in zip(("dq", "dk", "dv", "dg", "dlam"), (q, k, v, g, level_scales))]
        d_init = None
        if init_states is not None and ctx.needs_input_grad[5]:
            d_init = torch.from_numpy(grads["d_initial_state"]).to(init_states.dtype)
        return (*out, d_init, None, None, None, None)


def chunk_log_linear_attn(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
                          level_scales: torch.Tensor, initial_state: Optional[LogLinearState] = None,
                          output_final_state: bool = False, cu_seqlens: Optional[torch.Tensor] = None, *,
                          chunk_size: int = 64, form: str = "chunked"
                          ) -> Tuple[torch.Tensor, Optional[LogLinearState]]:
    """Log-linear attention: ``o[b,t,h] = sum_{s<=t} level_scales[b,t,h,level(t,s)] *
    exp(g[b,s+1,h] + ... + g[b,t,h]) * (q[b,t,g(h)] . k[b,s,g(h)]) * v[b,s,h]``, with the sums of
    g and the levels counted from each sequence's first token (plus ``initial_state.tokens``).

    Args:
        q, k: ``[B,T,G,K]``; v: ``[B,T,H,V]``; g: ``[B,T,H]`` (<= 0); level_scales: ``[B,T,H,L]``
            with L >= num_levels(tokens + T) for every sequence. float32 or float64 (q sets the
            working dtype; the others are converted, their gradients returned in their own dtype).
        initial_state: a ``LogLinearState`` every sequence continues from, or None (empty).
        output_final_state: also return the state after the last token of every sequence.
        cu_seqlens: int64 ``[S+1]`` offsets of packed sequences (B = 1), or None.
        chunk_size: the chunked form's chunk (a power of two; results do not depend on it beyond
            float rounding). form: ``"chunked"`` (default) or ``"recurrent"``.

    Returns:
        ``(o, final_state)``: o ``[B,T,H,V]`` in q's dtype; final_state a ``LogLinearState`` if
        ``output_final_state`` else None.
    """
    for name, x in (("q", q), ("k", k), ("v", v), ("g", g), ("level_scales", level_scales)):
        _check_tensor(name, x)
    _check_tensor("cu_seqlens", cu_seqlens, allow_none=True)
    dtype = _working_dtype(q)
    if cu_seqlens is not None and cu_seqlens.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"cu_seqlens: expected an int64 (or int32) tensor of offsets, got {cu_seqlens.dtype}")
    init_states = init_tokens = None
    if initial_state is not None:
        if not (isinstance(initial_state, tuple) and len(initial_state) == 2):
            raise TypeError("initial_state: expected a loglinear.torch.LogLinearState (states, tokens), got "
                            f"{type(initial_state).__name__}")
        init_states, init_tokens = initial_state
        _check_tensor("initial_state.states", init_states)
        _check_tensor("initial_state.tokens", init_tokens)
        if init_tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"initial_state.tokens: expected an int64 tensor, got {init_tokens.dtype}")
        if not init_states.is_floating_point():
            raise TypeError(f"initial_state.states: expected a float tensor, got {init_states.dtype}")
    if not isinstance(form, str):
        raise TypeError(f"form: expected a str, got {type(form).__name__}")
    if form not in ("chunked", "recurrent"):
        raise ValueError(f"form: expected \"chunked\" or \"recurrent\" (the forms that carry a state), got \"{form}\"")
    cu = None if cu_seqlens is None else cu_seqlens.to(torch.int64)
    o, fin_states, fin_tokens = _ChunkLogLinearAttn.apply(q, k, v, g, level_scales, init_states, init_tokens, cu,
                                                          form, chunk_size)
    o = o if o.dtype == dtype else o.to(dtype)
    return o, (LogLinearState(fin_states, fin_tokens) if output_final_state else None)


def decode_step(q_t: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor, g_t: torch.Tensor,
                level_scales_t: torch.Tensor, state: LogLinearState) -> Tuple[torch.Tensor, LogLinearState]:
    """One generated token of every sequence of a batch: ``(o_t, next_state)``.

    q_t, k_t ``[B,1,G,K]``; v_t ``[B,1,H,V]``; g_t ``[B,1,H]``; level_scales_t ``[B,1,H,L]`` with
    L >= num_levels(state.tokens + 1). ``state`` is what ``chunk_log_linear_attn(...,
    output_final_state=True)`` (the prefill) or the previous ``decode_step`` returned. The step
    reads and updates O(log T) level states (the recurrent form on one token), so its cost does
    not grow with the number of tokens decoded; it is differentiable like the op itself.
    """
    if q_t.dim() != 4 or q_t.shape[1] != 1:
        raise ValueError(f"q_t: expected [B,1,G,K] (one token), got shape {tuple(q_t.shape)}")
    if state is None:
        raise ValueError("state: expected the LogLinearState of a prefill or of the previous decode_step, got None")
    return chunk_log_linear_attn(q_t, k_t, v_t, g_t, level_scales_t, initial_state=state, output_final_state=True,
                                 form="recurrent")

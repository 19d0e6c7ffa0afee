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
- CUDA tensors, float32 or bfloat16 (q, k, v, o in that dtype; g and level_scales are used in
  float32 and their gradients returned in their own dtype): the library's CUDA kernels, queued on
  torch's current stream, with their workspace from torch's caching allocator; contiguous inputs
  of the working dtype are not copied. A carried state (``initial_state``, ``output_final_state``)
  and ``decode_step`` run on the GPU too, with float32 states whatever the inputs' dtype; every row
  of a dense batch must then have the same token count. ``decode_step`` with no gradient wanted
  runs the device decoding kernel (one launch a token, the state never leaving the GPU).
  ``cu_seqlens`` without a state runs on the GPU as one call of the varlen kernels for all
  sequences (chunked_forward_varlen_device: chunks aligned to every sequence start); with a
  carried or returned state, or lengths so uneven that the varlen grid would hold over 4x the
  chunks, as one stateful call per sequence. ``validate=True`` (the default) checks that every value is
  finite and g <= 0 as the C++ API does, which costs one device synchronisation per call and per
  backward; ``validate=False`` skips it (bad values then give undefined results, never a crash).
- ``torch.library``: with torch >= 2.4 the stateless call (no ``initial_state``, no
  ``cu_seqlens``, no final state) is the custom op ``torch.ops.loglinear.chunk_log_linear_attn``
  with its backward ``torch.ops.loglinear.chunk_log_linear_attn_backward``; under
  ``torch.compile`` the calls with a state or ``cu_seqlens`` go through a second custom op,
  ``torch.ops.loglinear.chunk_log_linear_attn_state`` (its backward recomputes the forward once,
  so eager calls keep the direct path). Either way ``torch.compile`` traces the call without a graph
  break. Older torch (Debian's 1.13) uses the plain autograd Functions. ``HAS_CUSTOM_OP`` says which.

Errors: a bad argument raises the library's ``ValueError`` / ``TypeError``, naming the argument by
this op's names (``level_scales``, not the C++ API's ``lam``).
"""
from __future__ import annotations

import math
import operator
import os
import re
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from . import _loglinear as _core

__all__ = ["HAS_CUSTOM_OP", "Decoder", "LogLinearState", "chunk_log_linear_attn", "decode_step", "empty_state"]


class LogLinearState(NamedTuple):
    """The carried state of log-linear attention: every sequence's Fenwick-tree level states.

    ``states`` ``[N,H,L,K,V]`` (on the inputs' device; in the working dtype on the CPU, float32 on
    CUDA whatever the inputs' dtype) and ``tokens`` ``[N]`` (int64), one
    row per sequence: N = B for a dense batch, the number of sequences with ``cu_seqlens``.
    ``states[i, h, l]`` is level l's K x V state of sequence i, head h, after ``tokens[i]`` tokens
    (SPEC.md section 4: the sum over the tokens s of level l's bucket of
    ``exp(g_{s+1} + ... + g_last) k_s v_s^T``). Sequence i has ``num_levels(tokens[i])`` levels
    (none after 0 tokens); levels above that are zero padding, so sequences of different lengths
    share one tensor; the rows of a dense batch may hold different counts too (a ragged batch,
    e.g. after a packed prefill of prompts of different lengths).
    """

    states: torch.Tensor
    tokens: torch.Tensor


def empty_state(N: int, H: int, K: int, V: int, dtype=torch.float64, device="cpu") -> LogLinearState:
    """The state of N sequences before any token: ``states`` [N,H,0,K,V], ``tokens`` all zero."""
    return LogLinearState(torch.zeros(N, H, 0, K, V, dtype=dtype, device=device),
                          torch.zeros(N, dtype=torch.int64, device=device))


# The C++ API's argument names that this op calls otherwise, for the messages.
_RENAMES = {"lam": "level_scales", "lam_t": "level_scales_t", "do": "the gradient of o"}


def _renamed(e: Exception) -> Exception:
    msg = str(e)
    m = re.match(r"(lam_t|lam|do)\b", msg)
    if m:
        msg = _RENAMES[m.group(1)] + msg[m.end():]
    return type(e)(msg)


def _check_tensor(name: str, x, device: Optional[torch.device] = None, allow_none: bool = False):
    """x is a tensor (None if allow_none) on `device` (when given): the op never moves data itself."""
    if x is None and allow_none:
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.device.type not in ("cpu", "cuda"):
        raise NotImplementedError(f"{name}: a {x.device.type} tensor; loglinear.torch runs on CPU and CUDA tensors")
    if device is not None and x.device != device:
        raise ValueError(f"{name}: expected a tensor on {device} (q's device), got {x.device}")


def _working_dtype(q: torch.Tensor) -> torch.dtype:
    if q.is_cuda:
        if q.dtype not in (torch.float32, torch.bfloat16):
            raise TypeError(f"q: expected dtype torch.float32 or torch.bfloat16 on the GPU, got {q.dtype} "
                            "(float64 runs on the CPU only; convert with .float() or .bfloat16())")
    elif q.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"q: expected dtype torch.float32 or torch.float64 on the CPU, got {q.dtype} "
                        "(bf16 runs on the GPU only; convert with .float() or .double())")
    return q.dtype


def _np(x: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    """A NumPy view of x in dtype: no copy when x is contiguous and already of that dtype."""
    return x.detach().to(dtype).contiguous().numpy()


def _to_chunk_size(c) -> int:
    """chunk_size as a Python int (the custom op's schema takes int64): ints and NumPy integers,
    not bool; a power of two above 2**62 means the same as 2**62 (both exceed any T); the C++
    checks the rest (a power of two >= 1) and names it."""
    if isinstance(c, bool):
        raise TypeError("chunk_size: expected an int, got bool")
    try:
        c = operator.index(c)
    except TypeError:
        raise TypeError(f"chunk_size: expected an int, got {type(c).__name__}") from None
    if c >= 2 ** 62:
        if c & (c - 1):
            raise ValueError(f"chunk_size: expected a power of two >= 1, got {c}")
        c = 2 ** 62
    return c


# ---- CUDA tensors: the library's kernels on torch's stream (dense batches, no carried state) ----

_NAMES = ("q", "k", "v", "g", "level_scales")


def _require_cuda_backend():
    if not getattr(_core, "has_cuda", False):
        raise RuntimeError("CUDA tensors: this build of loglinear has no CUDA backend (configure with "
                           "-DLOGLINEAR_CUDA=ON on a machine with nvcc), or call .cpu() on the inputs")


def _check_values_cuda(named: Sequence[Tuple[str, torch.Tensor]], g: Optional[torch.Tensor] = None):
    """The C++ API's value checks on the GPU: every value finite and g <= 0, with one synchronisation;
    the messages are the C++ ones (name, value, flat index)."""
    flags = [torch.isfinite(x).all() for _, x in named]
    if g is not None:
        flags.append((g <= 0).all())
    if bool(torch.stack(flags).all()):
        return
    for name, x in named:
        bad = (~torch.isfinite(x)).flatten().nonzero()
        if bad.numel():
            i = int(bad[0])
            raise ValueError(f"{name}: expected finite values, got {float(x.flatten()[i])} at flat index {i}")
    i = int((g > 0).flatten().nonzero()[0])
    raise ValueError(f"g: expected log-decay values <= 0, got {float(g.flatten()[i])} at flat index {i}")


def _cuda_args(q, k, v, g, lam):
    """The kernels' operands: q, k, v in q's dtype, g and lam in float32, all contiguous (no copy
    when they already are); the precision name and the shapes for the C++ checks."""
    dtype = q.dtype
    x = [t.to(dtype).contiguous() for t in (q, k, v)] + [t.to(torch.float32).contiguous() for t in (g, lam)]
    return x, ("bf16" if dtype == torch.bfloat16 else "fp32"), [tuple(t.shape) for t in x]


def _workspace(shapes, chunk_size, precision, backward, device, tokens=0, cu=None):
    try:
        nbytes = _core._cuda_workspace_bytes(*shapes, chunk_size, precision, backward, tokens, cu)
    except (ValueError, TypeError) as e:
        raise _renamed(e) from None
    # torch's caching allocator: blocks are 512-byte aligned (the kernels need 256) and are reused
    # in stream order, so freeing this after queueing the kernels on the current stream is safe.
    return torch.empty(max(int(nbytes), 1), dtype=torch.uint8, device=device)


def _forward_cuda(q, k, v, g, lam, chunk_size: int, validate: bool, cu: Optional[List[int]] = None,
                  cu_dev: Optional[torch.Tensor] = None, final_states: bool = False):
    """The stateless CUDA forward; with ``cu`` (offsets as a list, and ``cu_dev`` the same int64
    offsets on the device, which the kernels read) the packed sequences in one call. With
    ``final_states`` (packed only) it returns ``(o, states)``: every sequence's float32 level
    states after its last token, [S,H,num_levels(longest),K,V], written whole by the kernels."""
    _require_cuda_backend()
    x, precision, shapes = _cuda_args(q, k, v, g, lam)
    if validate:
        _check_values_cuda(list(zip(_NAMES, x)), g=x[3])
    with torch.cuda.device(q.device):
        ws = _workspace(shapes, chunk_size, precision, False, q.device, cu=cu)
        o = torch.empty(x[2].shape, dtype=q.dtype, device=q.device)
        fin = None
        if final_states:
            S, H, K, V = len(cu) - 1, x[2].shape[2], x[0].shape[3], x[2].shape[3]
            Lf = _core.num_levels(max(b - a for a, b in zip(cu[:-1], cu[1:])))
            fin = torch.empty((S, H, Lf, K, V), dtype=torch.float32, device=q.device)
        ptrs = [t.data_ptr() for t in (*x, o)] + ([0, fin.data_ptr()] if final_states else [])
        try:
            _core._cuda_forward_device(*shapes, chunk_size, precision, ptrs,
                                       ws.data_ptr(), ws.numel(), torch.cuda.current_stream(q.device).cuda_stream, cu,
                                       0 if cu_dev is None else cu_dev.data_ptr())
        except (ValueError, TypeError) as e:
            raise _renamed(e) from None
    return (o, fin) if final_states else o


def _backward_cuda(q, k, v, g, lam, d_o, chunk_size: int, validate: bool, cu: Optional[List[int]] = None,
                   cu_dev: Optional[torch.Tensor] = None):
    _require_cuda_backend()
    x, precision, shapes = _cuda_args(q, k, v, g, lam)
    dout = d_o.to(q.dtype).contiguous()
    if validate:
        _check_values_cuda([("the gradient of o", dout)])
    grads = [torch.empty_like(t) for t in x]  # dq, dk, dv in q's dtype; dg, dlam float32
    with torch.cuda.device(q.device):
        ws = _workspace(shapes, chunk_size, precision, True, q.device, cu=cu)
        try:
            _core._cuda_backward_device(*shapes, chunk_size, precision,
                                        [t.data_ptr() for t in (*x, dout, *grads)], ws.data_ptr(), ws.numel(),
                                        torch.cuda.current_stream(q.device).cuda_stream, cu,
                                        0 if cu_dev is None else cu_dev.data_ptr())
        except (ValueError, TypeError) as e:
            raise _renamed(e) from None
    return [gr.to(t.dtype) for gr, t in zip(grads, (q, k, v, g, lam))]


def _stream_tokens(init_tokens: torch.Tensor, B: int) -> List[int]:
    """The B token counts of a carried state, checked (one count per row, each >= 0); on the GPU one
    small device-to-host copy."""
    t = init_tokens.tolist()
    if init_tokens.dim() != 1 or len(t) != B:
        raise ValueError(f"initial_state.tokens: expected shape ({B},) (one count per sequence), got "
                         f"{tuple(init_tokens.shape)}")
    for i, n in enumerate(t):
        if n < 0:
            raise ValueError(f"initial_state.tokens: expected token counts >= 0, got {n} at index {i}")
    return t


def _dense_tokens_cuda(init_tokens: torch.Tensor, B: int) -> int:
    """The one token count of a dense batch's carried state (the GPU kernels take one t0 per call)."""
    t = _stream_tokens(init_tokens, B)
    for i, n in enumerate(t):
        if n != t[0]:
            raise ValueError(f"initial_state.tokens: expected one token count for every row of a dense batch (rows 0 "
                             f"and {i} have {t[0]} and {n}); pack sequences of different lengths with cu_seqlens")
    return int(t[0])


class _ChunkLogLinearAttnCuda(torch.autograd.Function):
    """The stateful op on CUDA tensors: o and the final state from the CUDA chunked forward that
    continues a carried state; backward = the CUDA handwritten backward with the state's terms."""

    @staticmethod
    def forward(ctx, q, k, v, g, level_scales, init_states, init_tokens, chunk_size, validate):
        _require_cuda_backend()
        x, precision, shapes = _cuda_args(q, k, v, g, level_scales)
        B, T, H, V = x[2].shape
        K = x[0].shape[3]
        t0 = 0 if init_states is None else _dense_tokens_cuda(init_tokens, B)
        L0 = _core.num_levels(t0) if t0 > 0 else 0
        S0 = None
        if init_states is not None:
            if (init_states.dim() != 5 or tuple(init_states.shape[:2]) != (B, H) or init_states.shape[2] < L0
                    or tuple(init_states.shape[3:]) != (K, V)):
                raise ValueError(f"initial_state.states: expected [B,H,L,K,V] = [{B},{H},>= {L0},{K},{V}] (L >= "
                                 f"num_levels(tokens)), got {tuple(init_states.shape)}")
            # A state of 0 tokens holds no level: the kernels get no pointer (nothing to read).
            S0 = init_states[:, :, :L0].to(torch.float32).contiguous() if L0 > 0 else None
        if validate:
            _check_values_cuda(list(zip(_NAMES, x)) + ([("initial_state.states", S0)] if S0 is not None else []),
                               g=x[3])
        Lf = _core.num_levels(t0 + T)
        with torch.cuda.device(q.device):
            ws = _workspace(shapes, chunk_size, precision, False, q.device, tokens=t0)
            o = torch.empty(x[2].shape, dtype=q.dtype, device=q.device)
            fin = torch.empty((B, H, Lf, K, V), dtype=torch.float32, device=q.device)
            try:
                _core._cuda_forward_state_device(
                    *shapes, chunk_size, precision, t0,
                    [t.data_ptr() for t in (*x, o)] + [0 if S0 is None else S0.data_ptr(), fin.data_ptr()],
                    ws.data_ptr(), ws.numel(), torch.cuda.current_stream(q.device).cuda_stream)
            except (ValueError, TypeError) as e:
                raise _renamed(e) from None
        ctx.save_for_backward(q, k, v, g, level_scales, S0)
        ctx.t0, ctx.chunk_size, ctx.validate = t0, chunk_size, validate
        ctx.init_like = None if init_states is None else (tuple(init_states.shape), init_states.dtype)
        ctx.set_materialize_grads(False)
        tokens = torch.full((B,), t0 + T, dtype=torch.int64, device=q.device)
        ctx.mark_non_differentiable(tokens)
        return o, fin, tokens

    @staticmethod
    def backward(ctx, d_o, d_fin, _d_tokens):
        q, k, v, g, level_scales, S0 = ctx.saved_tensors
        x, precision, shapes = _cuda_args(q, k, v, g, level_scales)
        dout = torch.zeros_like(x[2]) if d_o is None else d_o.to(q.dtype).contiguous()
        dF = None if d_fin is None else d_fin.to(torch.float32).contiguous()
        if ctx.validate:
            _check_values_cuda([("the gradient of o", dout)] + ([("the gradient of the final state", dF)]
                                                               if dF is not None else []))
        grads = [torch.empty_like(t) for t in x]
        dS0 = torch.empty_like(S0) if S0 is not None and ctx.needs_input_grad[5] else None
        with torch.cuda.device(q.device):
            ws = _workspace(shapes, ctx.chunk_size, precision, True, q.device, tokens=ctx.t0)
            ptrs = [t.data_ptr() for t in (*x, dout, *grads)]
            ptrs += [0 if t is None else t.data_ptr() for t in (S0, dF, dS0)]
            try:
                _core._cuda_backward_state_device(*shapes, ctx.chunk_size, precision, ctx.t0, ptrs, ws.data_ptr(),
                                                  ws.numel(), torch.cuda.current_stream(q.device).cuda_stream)
            except (ValueError, TypeError) as e:
                raise _renamed(e) from None
        out = [gr.to(t.dtype) for gr, t in zip(grads, (q, k, v, g, level_scales))]
        d_init = None
        if ctx.init_like is not None and ctx.needs_input_grad[5]:  # the caller's (level-padded) shape and dtype
            shape, dtype = ctx.init_like
            d_init = torch.zeros(shape, dtype=dtype, device=q.device)
            if dS0 is not None:
                d_init[:, :, :dS0.shape[2]] = dS0.to(dtype)
        return (*out, d_init, None, None, None)


def _stateful_cuda(q, k, v, g, level_scales, init_states, init_tokens, chunk_size, validate):
    """A dense stateful call on CUDA tensors. The kernels start at a chunk boundary of the sequence
    and run with the largest power of two <= C dividing t0, so after an unaligned t0 a long call
    would run with a tiny chunk (time and workspace growing as T / C'): the call is then split at
    the next multiple of the GPU chunk, a head of fewer than C tokens and an aligned rest that
    continues from the head's state (autograd chains the two; the head and rest are copies of
    their rows when B > 1)."""
    C = min(chunk_size, 64)
    t0 = 0 if init_states is None else _dense_tokens_cuda(init_tokens, q.shape[0])
    head = (-t0) % C if C >= 1 and C & (C - 1) == 0 else 0  # a bad chunk_size: the C++ names it
    T = q.shape[1]
    if head == 0 or T <= head:
        return _ChunkLogLinearAttnCuda.apply(q, k, v, g, level_scales, init_states, init_tokens, chunk_size, validate)
    x = (q, k, v, g, level_scales)
    o1, s1, t1 = _ChunkLogLinearAttnCuda.apply(*[t[:, :head] for t in x], init_states, init_tokens, chunk_size,
                                               validate)
    o2, s2, t2 = _ChunkLogLinearAttnCuda.apply(*[t[:, head:] for t in x], s1, t1, chunk_size, validate)
    return torch.cat([o1, o2], 1), s2, t2


def _packed_offsets(q, cu_seqlens) -> List[int]:
    """The offsets of packed sequences as a list, checked with the CPU's messages (loglinear.forward_state)."""
    if q.shape[0] != 1:
        raise ValueError(f"q: expected B = 1 with cu_seqlens (the sequences packed along T), got B = {q.shape[0]}")
    if cu_seqlens.dim() != 1:
        raise ValueError(f"cu_seqlens: expected a 1-D tensor of offsets, got shape {tuple(cu_seqlens.shape)}")
    cu, T = cu_seqlens.tolist(), q.shape[1]
    if len(cu) < 2:
        raise ValueError(f"cu_seqlens: expected S+1 >= 2 offsets (S >= 1 sequences), got {len(cu)}")
    if cu[0] != 0:
        raise ValueError(f"cu_seqlens: expected cu_seqlens[0] = 0, got {cu[0]}")
    for i in range(len(cu) - 1):
        if cu[i + 1] <= cu[i]:
            raise ValueError(f"cu_seqlens: expected strictly increasing offsets (no empty sequence), got "
                             f"cu_seqlens[{i}] = {cu[i]}, cu_seqlens[{i + 1}] = {cu[i + 1]}")
    if cu[-1] != T:
        raise ValueError(f"cu_seqlens: expected the last offset cu_seqlens[{len(cu) - 1}] to equal q's T = {T}, "
                         f"got {cu[-1]}")
    return cu


def _varlen_kernel_pays(cu: Sequence[int], chunk_size: int, H: int) -> bool:
    """Whether packed sequences without state run as one varlen kernel call: its grid and workspace
    hold the longest sequence's chunk count for every sequence (the slots past a shorter one's end
    return at once, but their chunk states are allocated), so it is taken when those slots are at
    most 4x the sequences' own chunks, and when the S x H streams fit the grid (65535); otherwise
    one stateful call per sequence."""
    C = max(1, min(int(chunk_size), 64))
    chunks = [(b - a + C - 1) // C for a, b in zip(cu[:-1], cu[1:])]
    return len(chunks) * H <= 65535 and len(chunks) * max(chunks) <= 4 * sum(chunks)


class _VarlenCuda(torch.autograd.Function):
    """Packed sequences without state on CUDA tensors: one forward and one backward kernel call for
    all sequences (the C++ chunked_forward_varlen_device / chunked_backward_varlen_device), each
    sequence its own Fenwick tree with chunks aligned to its start."""

    @staticmethod
    def forward(ctx, q, k, v, g, level_scales, cu, cu_dev, chunk_size, validate):
        # cu: the offsets as a list (checked, and they size the grid); cu_dev: the same int64
        # offsets on q's device, which the kernels read (no host-to-device copy per call).
        ctx.save_for_backward(q, k, v, g, level_scales, cu_dev)
        ctx.cu, ctx.chunk_size, ctx.validate = cu, chunk_size, validate
        return _forward_cuda(q, k, v, g, level_scales, chunk_size, validate, cu=cu, cu_dev=cu_dev)

    @staticmethod
    def backward(ctx, d_o):
        q, k, v, g, level_scales, cu_dev = ctx.saved_tensors
        grads = _backward_cuda(q, k, v, g, level_scales, d_o, ctx.chunk_size, ctx.validate, cu=ctx.cu, cu_dev=cu_dev)
        return (*grads, None, None, None, None)


def _packed_cuda(q, k, v, g, level_scales, cu_seqlens, init_states, init_tokens, chunk_size, validate):
    """Packed sequences on CUDA tensors (B = 1) that carry or return a state: each sequence is one
    stateful call on its rows (a view, contiguous: no copy), starting its own Fenwick tree from its
    initial state, so chunks are aligned to every sequence start as on the CPU. Outputs are
    concatenated, final states stacked and padded with zero levels to the most levels. One kernel
    pipeline per sequence: the launches grow with the number of sequences (without any state,
    chunk_log_linear_attn takes the varlen kernels, _VarlenCuda, unless the lengths are very uneven)."""
    cu = _packed_offsets(q, cu_seqlens)
    N = len(cu) - 1
    if init_states is not None:
        if init_tokens.dim() != 1 or init_tokens.shape[0] != N:
            raise ValueError(f"initial_state.tokens: expected shape ({N},) (one count per sequence), got "
                             f"{tuple(init_tokens.shape)}")
        if init_states.dim() != 5 or init_states.shape[0] != N:
            raise ValueError(f"initial_state.states: expected [S,H,L,K,V] with S = {N} sequences, got "
                             f"{tuple(init_states.shape)}")
    outs, finals, tokens = [], [], []
    for i in range(N):
        part = [t[:, cu[i]:cu[i + 1]] for t in (q, k, v, g, level_scales)]
        state = (None, None) if init_states is None else (init_states[i:i + 1], init_tokens[i:i + 1])
        o, fin, tok = _stateful_cuda(*part, *state, chunk_size, validate)
        outs.append(o)
        finals.append(fin)
        tokens.append(tok)
    levels = max(f.shape[2] for f in finals)
    states = torch.cat([torch.nn.functional.pad(f, (0, 0, 0, 0, 0, levels - f.shape[2])) for f in finals], 0)
    return torch.cat(outs, 1), states, torch.cat(tokens)


# ---- The stateless op (any device): one implementation behind the Function and the custom op ----

def _forward_stateless(q, k, v, g, lam, form: str, chunk_size: int, validate: bool) -> torch.Tensor:
    if q.is_cuda:
        return _forward_cuda(q, k, v, g, lam, chunk_size, validate)
    dtype = q.dtype
    try:
        o, _, _ = _core.forward_state(*[_np(t, dtype) for t in (q, k, v, g, lam)], form=form, chunk_size=chunk_size)
    except (ValueError, TypeError) as e:
        raise _renamed(e) from None
    return torch.from_numpy(o)


def _backward_stateless(q, k, v, g, lam, d_o, form: str, chunk_size: int, validate: bool):
    if q.is_cuda:
        return _backward_cuda(q, k, v, g, lam, d_o, chunk_size, validate)
    dtype = q.dtype
    try:
        grads = _core.backward_state(*[_np(t, dtype) for t in (q, k, v, g, lam)], _np(d_o, dtype), form=form,
                                     chunk_size=chunk_size)
    except (ValueError, TypeError) as e:
        raise _renamed(e) from None
    return [torch.from_numpy(grads[n]).to(t.dtype) for n, t in zip(("dq", "dk", "dv", "dg", "dlam"),
                                                                     (q, k, v, g, lam))]


class _StatelessFunction(torch.autograd.Function):
    """o = the op without state or packing; backward = the handwritten backward (torch < 2.4)."""

    @staticmethod
    def forward(ctx, q, k, v, g, lam, form, chunk_size, validate):
        ctx.save_for_backward(q, k, v, g, lam)
        ctx.form, ctx.chunk_size, ctx.validate = form, chunk_size, validate
        return _forward_stateless(q, k, v, g, lam, form, chunk_size, validate)

    @staticmethod
    def backward(ctx, d_o):
        q, k, v, g, lam = ctx.saved_tensors
        grads = _backward_stateless(q, k, v, g, lam, d_o, ctx.form, ctx.chunk_size, ctx.validate)
        return (*grads, None, None, None)


#: True when the op is registered as the custom ops ``torch.ops.loglinear.chunk_log_linear_attn``
#: (stateless) and ``chunk_log_linear_attn_state`` (state or packing, under torch.compile), torch >=
#: 2.4's ``torch.library.custom_op``, so that ``torch.compile`` traces every call whole.
HAS_CUSTOM_OP = hasattr(torch, "library") and hasattr(torch.library, "custom_op")

if HAS_CUSTOM_OP:
    @torch.library.custom_op("loglinear::chunk_log_linear_attn", mutates_args=())
    def _op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, level_scales: torch.Tensor,
            form: str, chunk_size: int, validate: bool) -> torch.Tensor:
        """Log-linear attention without carried state (loglinear.torch.chunk_log_linear_attn)."""
        return _forward_stateless(q, k, v, g, level_scales, form, chunk_size, validate)

    @_op.register_fake
    def _op_fake(q, k, v, g, level_scales, form, chunk_size, validate):
        return v.new_empty(v.shape, dtype=q.dtype)

    @torch.library.custom_op("loglinear::chunk_log_linear_attn_backward", mutates_args=())
    def _op_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
                     level_scales: torch.Tensor, d_o: torch.Tensor, form: str, chunk_size: int,
                     validate: bool) -> List[torch.Tensor]:
        """Gradients (dq, dk, dv, dg, dlevel_scales) of sum(d_o * o), the handwritten backward."""
        return _backward_stateless(q, k, v, g, level_scales, d_o, form, chunk_size, validate)

    @_op_backward.register_fake
    def _op_backward_fake(q, k, v, g, level_scales, d_o, form, chunk_size, validate):
        return [torch.empty_like(t) for t in (q, k, v, g, level_scales)]

    def _op_setup_context(ctx, inputs, output):
        q, k, v, g, level_scales, form, chunk_size, validate = inputs
        ctx.save_for_backward(q, k, v, g, level_scales)
        ctx.form, ctx.chunk_size, ctx.validate = form, chunk_size, validate

    def _op_autograd(ctx, d_o):
        q, k, v, g, level_scales = ctx.saved_tensors
        grads = _op_backward(q, k, v, g, level_scales, d_o, ctx.form, ctx.chunk_size, ctx.validate)
        return (*grads, None, None, None)

    _op.register_autograd(_op_autograd, setup_context=_op_setup_context)


#: torch.compiler.is_compiling (torch >= 2.3): True while torch.compile traces a function.
_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)

if HAS_CUSTOM_OP:
    # The calls with a carried state or packed sequences, as one custom op for torch.compile. The
    # eager path (_dispatch) reads token counts and offsets on the host and picks a kernel path by
    # them, which tracing cannot follow; the op hides it behind a schema. Its backward runs the
    # eager path again with autograd on (the handwritten backward, through the autograd Functions
    # above): one more forward than eager mode costs, which is why eager calls do not take the op.
    # The final states' level count depends on the token counts (data), so their fake shape has a
    # dynamic size.

    def _fresh(t: torch.Tensor, inputs) -> torch.Tensor:
        """t, or a copy of it where it shares memory with an input (a custom op may not alias)."""
        ptrs = {x.data_ptr() for x in inputs if x is not None and x.numel()}
        return t.clone() if t.numel() and t.data_ptr() in ptrs else t

    @torch.library.custom_op("loglinear::chunk_log_linear_attn_state", mutates_args=())
    def _op_state(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, level_scales: torch.Tensor,
                  init_states: Optional[torch.Tensor], init_tokens: Optional[torch.Tensor],
                  cu_seqlens: Optional[torch.Tensor], output_final_state: bool, form: str, chunk_size: int,
                  validate: bool) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """loglinear.torch.chunk_log_linear_attn with a state or cu_seqlens: (o, final states, final
        tokens); without output_final_state the last two are empty."""
        with torch.no_grad():
            o, fin_states, fin_tokens = _dispatch(q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens,
                                                  output_final_state, form, chunk_size, validate)
        if fin_states is None:
            return o, o.new_empty(0, dtype=torch.float32), o.new_empty(0, dtype=torch.int64)
        inputs = (q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens)
        return o, _fresh(fin_states, inputs), _fresh(fin_tokens, inputs)

    @_op_state.register_fake
    def _op_state_fake(q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens, output_final_state, form,
                       chunk_size, validate):
        o = v.new_empty(v.shape, dtype=_working_dtype(q))
        if not output_final_state:
            return o, o.new_empty(0, dtype=torch.float32), o.new_empty(0, dtype=torch.int64)
        N = q.shape[0] if cu_seqlens is None else cu_seqlens.shape[0] - 1
        levels = torch.library.get_ctx().new_dynamic_size()
        states_dtype = torch.float32 if q.is_cuda else _working_dtype(q)
        return (o, o.new_empty((N, v.shape[2], levels, q.shape[3], v.shape[3]), dtype=states_dtype),
                o.new_empty((N,), dtype=torch.int64))

    @torch.library.custom_op("loglinear::chunk_log_linear_attn_state_backward", mutates_args=())
    def _op_state_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor,
                           level_scales: torch.Tensor, init_states: Optional[torch.Tensor],
                           init_tokens: Optional[torch.Tensor], cu_seqlens: Optional[torch.Tensor],
                           output_final_state: bool, form: str, chunk_size: int, validate: bool, d_o: torch.Tensor,
                           d_final_states: torch.Tensor) -> List[torch.Tensor]:
        """Gradients (dq, dk, dv, dg, dlevel_scales, dinitial_states; the last empty without an
        initial state) of sum(d_o * o) + sum(d_final_states * final states)."""
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_() for t in (q, k, v, g, level_scales)]
            s0 = None if init_states is None else init_states.detach().requires_grad_()
            o, fin_states, _ = _dispatch(*leaves, s0, init_tokens, cu_seqlens, output_final_state, form, chunk_size,
                                         validate)
            outs, weights = [o], [d_o]
            if fin_states is not None and d_final_states.numel():
                outs.append(fin_states)
                weights.append(d_final_states)
            wrt = leaves + ([s0] if s0 is not None else [])
            grads = torch.autograd.grad(outs, wrt, weights, allow_unused=True)
        grads = [torch.zeros_like(x) if d is None else d for d, x in zip(grads, wrt)]
        if s0 is None:
            grads.append(q.new_empty(0))
        return grads

    @_op_state_backward.register_fake
    def _op_state_backward_fake(q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens, output_final_state,
                                form, chunk_size, validate, d_o, d_final_states):
        return [torch.empty_like(t) for t in (q, k, v, g, level_scales)] + [
            q.new_empty(0) if init_states is None else torch.empty_like(init_states)]

    def _op_state_setup_context(ctx, inputs, output):
        tensors = inputs[:8]  # q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens (the last 3 optional)
        ctx.present = [t is not None for t in tensors]
        ctx.save_for_backward(*[t for t in tensors if t is not None])
        ctx.flags = inputs[8:]

    def _op_state_autograd(ctx, d_o, d_final_states, _d_tokens):
        saved = iter(ctx.saved_tensors)
        q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens = [
            next(saved) if present else None for present in ctx.present]
        d_o = torch.zeros_like(v, dtype=_working_dtype(q)) if d_o is None else d_o
        d_final_states = v.new_empty(0) if d_final_states is None else d_final_states
        grads = _op_state_backward(q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens, *ctx.flags, d_o,
                                   d_final_states)
        return (*grads[:5], None if init_states is None else grads[5], None, None, None, None, None, None)

    _op_state.register_autograd(_op_state_autograd, setup_context=_op_state_setup_context)


def _stateless(q, k, v, g, lam, form, chunk_size, validate):
    if HAS_CUSTOM_OP:
        return _op(q, k, v, g, lam, form, chunk_size, validate)
    return _StatelessFunction.apply(q, k, v, g, lam, form, chunk_size, validate)


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
                          chunk_size: int = 64, form: str = "chunked", validate: bool = True
                          ) -> Tuple[torch.Tensor, Optional[LogLinearState]]:
    """Log-linear attention: ``o[b,t,h] = sum_{s<=t} level_scales[b,t,h,level(t,s)] *
    exp(g[b,s+1,h] + ... + g[b,t,h]) * (q[b,t,g(h)] . k[b,s,g(h)]) * v[b,s,h]``, with the sums of
    g and the levels counted from each sequence's first token (plus ``initial_state.tokens``).

    Args:
        q, k: ``[B,T,G,K]``; v: ``[B,T,H,V]``; g: ``[B,T,H]`` (<= 0); level_scales: ``[B,T,H,L]``
            with L >= num_levels(tokens + T) for every sequence. All on one device. CPU: float32
            or float64; CUDA: float32 or bfloat16. q sets the working dtype; the others are
            converted, their gradients returned in their own dtype.
        initial_state: a ``LogLinearState`` every sequence continues from, or None (empty). The
            rows of a dense batch may hold different token counts (each row then runs as its own
            sequence of a packed call, as with cu_seqlens).
        output_final_state: also return the state after the last token of every sequence (on CUDA
            tensors its states are float32).
        cu_seqlens: int64 ``[S+1]`` offsets of packed sequences (B = 1), or None. On CUDA tensors
            without a state, one varlen kernel call for all sequences; with a state (or very
            uneven lengths), one stateful call per sequence.
        chunk_size: the chunked form's chunk (a power of two; results do not depend on it beyond
            float rounding; the GPU clamps it to 64). form: ``"chunked"`` (default) or
            ``"recurrent"`` (CPU).
        validate: check that every value is finite and g <= 0 (named ValueError); on the GPU this
            costs one synchronisation per call and per backward.

    Returns:
        ``(o, final_state)``: o ``[B,T,H,V]`` in q's dtype; final_state a ``LogLinearState`` if
        ``output_final_state`` else None.
    """
    _check_tensor("q", q)
    for name, x in (("k", k), ("v", v), ("g", g), ("level_scales", level_scales)):
        _check_tensor(name, x, q.device)
    _check_tensor("cu_seqlens", cu_seqlens, q.device, allow_none=True)
    _working_dtype(q)  # a named TypeError for a dtype this device does not run
    if cu_seqlens is not None and cu_seqlens.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"cu_seqlens: expected an int64 (or int32) tensor of offsets, got {cu_seqlens.dtype}")
    init_states = init_tokens = None
    if initial_state is not None:
        if not (isinstance(initial_state, tuple) and len(initial_state) == 2):
            raise TypeError("initial_state: expected a loglinear.torch.LogLinearState (states, tokens), got "
                            f"{type(initial_state).__name__}")
        init_states, init_tokens = initial_state
        _check_tensor("initial_state.states", init_states, q.device)
        _check_tensor("initial_state.tokens", init_tokens, q.device)
        if init_tokens.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"initial_state.tokens: expected an int64 tensor, got {init_tokens.dtype}")
        if not init_states.is_floating_point():
            raise TypeError(f"initial_state.states: expected a float tensor, got {init_states.dtype}")
    if not isinstance(form, str):
        raise TypeError(f"form: expected a str, got {type(form).__name__}")
    if form not in ("chunked", "recurrent"):
        raise ValueError(f"form: expected \"chunked\" or \"recurrent\" (the forms that carry a state), got \"{form}\"")
    chunk_size = _to_chunk_size(chunk_size)
    if not isinstance(validate, bool):
        raise TypeError(f"validate: expected a bool, got {type(validate).__name__}")
    stateful = initial_state is not None or output_final_state or cu_seqlens is not None
    if stateful and HAS_CUSTOM_OP and _compiling():
        # Under torch.compile: the stateful and packed calls as one custom op, so that the
        # dispatch below (which reads token counts and offsets on the host) is not traced.
        o, fin_states, fin_tokens = torch.ops.loglinear.chunk_log_linear_attn_state(
            q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens, bool(output_final_state), form,
            chunk_size, validate)
        return o, (LogLinearState(fin_states, fin_tokens) if output_final_state else None)
    o, fin_states, fin_tokens = _dispatch(q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens,
                                          output_final_state, form, chunk_size, validate)
    return o, (LogLinearState(fin_states, fin_tokens) if output_final_state else None)


def _dispatch(q, k, v, g, level_scales, init_states, init_tokens, cu_seqlens, output_final_state: bool, form: str,
              chunk_size: int, validate: bool):
    """The eager path of chunk_log_linear_attn after its argument checks: which implementation runs
    (CPU form, CUDA stateless, stateful, packed kernels or per sequence). Returns (o, final states,
    final tokens); the last two are None unless output_final_state."""
    dtype = _working_dtype(q)
    if init_tokens is not None and cu_seqlens is None and _rows_at_different_positions(
            init_tokens, (q, k, v, g, level_scales)):
        # Rows that continue from different token counts (e.g. streams after a ragged decode_step):
        # each row is its own sequence of a packed call, which continues each from its own count.
        B, T = q.shape[0], q.shape[1]
        cu = torch.arange(B + 1, dtype=torch.int64, device=q.device) * T
        flat = [t.reshape((1, B * T) + tuple(t.shape[2:])) for t in (q, k, v, g, level_scales)]
        o, fin_states, fin_tokens = _dispatch(*flat, init_states, init_tokens, cu, output_final_state, form,
                                              chunk_size, validate)
        return o.reshape((B, T) + tuple(o.shape[2:])), fin_states, fin_tokens
    stateful = init_states is not None or output_final_state or cu_seqlens is not None
    if q.is_cuda:
        if form != "chunked":
            raise ValueError(f"form: the CUDA kernels implement \"chunked\" only, got \"{form}\"")
        if cu_seqlens is not None:
            wants_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, g, level_scales))
            if init_states is None and (not output_final_state or not wants_grad):
                cu = _packed_offsets(q, cu_seqlens)
                if _varlen_kernel_pays(cu, chunk_size, v.shape[2]):
                    cu_dev = cu_seqlens.to(torch.int64).contiguous()
                    if not output_final_state:
                        return _VarlenCuda.apply(q, k, v, g, level_scales, cu, cu_dev, chunk_size, validate), None, None
                    # A prefill of packed prompts (no gradient wanted): one call returns every
                    # sequence's final state; the gradient of final states takes the per-sequence
                    # path below.
                    o, fin = _forward_cuda(q, k, v, g, level_scales, chunk_size, validate, cu=cu, cu_dev=cu_dev,
                                           final_states=True)
                    return o, fin, cu_dev[1:] - cu_dev[:-1]
            o, fin_states, fin_tokens = _packed_cuda(q, k, v, g, level_scales, cu_seqlens.to(torch.int64),
                                                     init_states, init_tokens, chunk_size, validate)
            return (o, fin_states, fin_tokens) if output_final_state else (o, None, None)
        if stateful:
            o, fin_states, fin_tokens = _stateful_cuda(q, k, v, g, level_scales, init_states, init_tokens,
                                                       chunk_size, validate)
            return (o, fin_states, fin_tokens) if output_final_state else (o, None, None)
    if not stateful:
        o = _stateless(q, k, v, g, level_scales, form, chunk_size, validate)
        return (o if o.dtype == dtype else o.to(dtype)), None, None
    cu = None if cu_seqlens is None else cu_seqlens.to(torch.int64)
    o, fin_states, fin_tokens = _ChunkLogLinearAttn.apply(q, k, v, g, level_scales, init_states, init_tokens, cu,
                                                          form, chunk_size)
    o = o if o.dtype == dtype else o.to(dtype)
    return (o, fin_states, fin_tokens) if output_final_state else (o, None, None)




def _rows_at_different_positions(tokens: torch.Tensor, x: Sequence[torch.Tensor]) -> bool:
    """Whether a dense batch's carried state holds different token counts for its rows (one small
    device-to-host copy on the GPU). Only for well-formed inputs (one count per row, every input
    [B,T,...] like q): anything else takes the normal path, whose checks name the argument."""
    q = x[0]
    if tokens.dim() != 1 or tokens.numel() < 2 or q.dim() != 4 or tokens.numel() != q.shape[0] or q.shape[1] < 1:
        return False
    if any(t.dim() < 3 or tuple(t.shape[:2]) != tuple(q.shape[:2]) for t in x):
        return False
    return bool(tokens.min() != tokens.max())


def _decode_cuda(q_t, k_t, v_t, g_t, level_scales_t, state: LogLinearState, validate: bool):
    """decode_step on CUDA tensors without autograd: the device decoding kernel (the level cascade
    and decay and the read fused: one launch, against about 15 for a chunked call of one token) on a
    float32 copy of the state grown to num_levels(tokens + 1) levels; nothing leaves the GPU but
    the token count (one small copy, as every stateful CUDA call)."""
    _require_cuda_backend()
    # The op's own checks: one device, a working dtype the GPU takes (never a silent float64 cast).
    _check_tensor("q", q_t)
    for name, t in (("k", k_t), ("v", v_t), ("g", g_t), ("level_scales", level_scales_t),
                    ("initial_state.states", state[0]), ("initial_state.tokens", state[1])):
        _check_tensor(name, t, q_t.device)
    _working_dtype(q_t)
    # The decoding kernels compute in float32 (bfloat16 inputs convert exactly); o_t returns in q_t's dtype.
    x = [t.to(torch.float32).contiguous() for t in (q_t, k_t, v_t, g_t, level_scales_t)]
    B, _, H, V = x[2].shape
    G, K = x[0].shape[2], x[0].shape[3]
    states, tokens = state
    counts = _stream_tokens(tokens, B)
    # A ragged batch (streams at different positions, e.g. after a packed prefill) runs the same
    # kernel with each stream's count; the sizes and levels below follow the largest count.
    t0, ragged = max(counts), min(counts) != max(counts)
    try:  # the shape checks of a chunked call of one token after t0 (names as the C++ API's)
        _core._cuda_workspace_bytes(*[tuple(t.shape) for t in x], 64, "fp32", False, t0)
    except (ValueError, TypeError) as e:
        raise _renamed(e) from None
    L0, Lf, L = (_core.num_levels(t0) if t0 > 0 else 0), _core.num_levels(t0 + 1), x[4].shape[3]
    if states.dim() != 5 or tuple(states.shape[:2]) != (B, H) or states.shape[2] < L0 or tuple(states.shape[3:]) != (K, V):
        raise ValueError(f"initial_state.states: expected [B,H,L,K,V] = [{B},{H},>= {L0},{K},{V}] (L >= "
                         f"num_levels(tokens)), got {tuple(states.shape)}")
    if validate:
        _check_values_cuda(list(zip(_NAMES, x)) + ([("initial_state.states", states[:, :, :L0])] if L0 else []),
                           g=x[3])
    with torch.cuda.device(q_t.device):
        # No zero fill: the kernel reads only the levels each stream holds and writes all Lf levels
        # of every stream (zeros above its live ones).
        nxt = torch.empty((B, H, Lf, K, V), dtype=torch.float32, device=q_t.device)
        if L0:
            nxt[:, :, :L0] = states[:, :, :L0]
        o = torch.empty((B, 1, H, V), dtype=torch.float32, device=q_t.device)
        tok = tokens.to(torch.int64).contiguous()
        try:
            _core._cuda_decode_device(B, H, G, K, V, L, Lf, t0, [t.data_ptr() for t in (nxt, *x, o)],
                                      torch.cuda.current_stream(q_t.device).cuda_stream,
                                      tok.data_ptr() if ragged else None)
        except (ValueError, TypeError) as e:
            raise _renamed(e) from None
    o = o if q_t.dtype == torch.float32 else o.to(q_t.dtype)
    return o, LogLinearState(nxt, tok + 1)


def decode_step(q_t: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor, g_t: torch.Tensor,
                level_scales_t: torch.Tensor, state: LogLinearState, *, validate: bool = True
                ) -> Tuple[torch.Tensor, LogLinearState]:
    """One generated token of every sequence of a batch: ``(o_t, next_state)``.

    q_t, k_t ``[B,1,G,K]``; v_t ``[B,1,H,V]``; g_t ``[B,1,H]``; level_scales_t ``[B,1,H,L]`` with
    L >= num_levels(state.tokens + 1). ``state`` is what ``chunk_log_linear_attn(...,
    output_final_state=True)`` (the prefill) or the previous ``decode_step`` returned; it is not
    modified. The step reads and updates O(log T) level states (the recurrent form on one token),
    so its cost does not grow with the number of tokens decoded.

    The streams may be at different positions (``state.tokens`` differing, e.g. after a prefill
    with ``cu_seqlens`` of prompts of different lengths): each continues from its own count.

    Where it runs: CPU tensors, the recurrent form. CUDA tensors with no gradient wanted
    (``torch.no_grad()``, or no input requiring grad): the device decoding kernel, one launch a
    token for the whole batch, ragged or not, the state staying on the GPU (float32). CUDA tensors
    with a gradient wanted: the chunked kernels on one token with the carried state, so that the
    step is differentiable like the op itself (a ragged batch: one call per stream). Ragged
    batches elsewhere run as a packed call of B one-token sequences. ``validate`` as in
    ``chunk_log_linear_attn``.
    """
    if q_t.dim() != 4 or q_t.shape[1] != 1:
        raise ValueError(f"q_t: expected [B,1,G,K] (one token), got shape {tuple(q_t.shape)}")
    if state is None:
        raise ValueError("state: expected the LogLinearState of a prefill or of the previous decode_step, got None")
    if not (isinstance(state, tuple) and len(state) == 2):
        raise TypeError(f"state: expected a loglinear.torch.LogLinearState (states, tokens), got {type(state).__name__}")
    if not isinstance(validate, bool):
        raise TypeError(f"validate: expected a bool, got {type(validate).__name__}")
    inputs = (q_t, k_t, v_t, g_t, level_scales_t, state[0])
    if q_t.is_cuda and all(isinstance(t, torch.Tensor) and t.is_cuda for t in inputs) and \
            not (torch.is_grad_enabled() and any(t.requires_grad for t in inputs)):
        if state[1].dtype not in (torch.int64, torch.int32):
            raise TypeError(f"initial_state.tokens: expected an int64 tensor, got {state[1].dtype}")
        return _decode_cuda(q_t, k_t, v_t, g_t, level_scales_t, state, validate)
    # CPU: the recurrent form on one token. CUDA with autograd: the chunked kernels with the carried
    # state, whose chunk becomes 1 at odd token counts: the same O(log T) level reads and writes.
    # A ragged batch there: chunk_log_linear_attn runs each stream as its own one-token sequence.
    return chunk_log_linear_attn(q_t, k_t, v_t, g_t, level_scales_t, initial_state=state, output_final_state=True,
                                 form="chunked" if q_t.is_cuda else "recurrent", validate=validate)


class Decoder:
    """A decoding loop's state kept in place: ``step`` updates it and returns o_t, with no host
    synchronisation and no allocation that depends on the position, so that on the GPU a step (or a
    whole model's step around it) can be captured in a CUDA graph and replayed per token.

    ``decode_step`` is the functional form (a new state per token, the token counts read on the
    host); this class holds the states in one float32 buffer of ``num_levels(max_tokens)`` levels,
    zero above each stream's live levels, and the per-stream counts on the device, and steps them
    with the device decoding kernel (ragged batches included). On CPU tensors ``step`` runs
    ``decode_step`` and keeps its result. No gradient: it is for inference (``decode_step`` is
    differentiable).

    Args:
        state: the ``LogLinearState`` to continue from (a prefill's final state, or
            ``empty_state``); its rows may hold different token counts.
        max_tokens: the most tokens any stream will hold; level_scales_t needs
            L >= num_levels(max_tokens). On the CPU a step past it is refused; on the GPU a stream
            that holds ``2^(num_levels(max_tokens) - 1)`` tokens (>= max_tokens, the most its levels
            hold) gets NaN outputs from then on, and its state and count stay as they were (the
            kernel checks the count it reads; the host reads none).

    Attributes:
        states: ``[B,H,num_levels(max_tokens),K,V]``; tokens: ``[B]`` int64, on the state's device.
    """

    def __init__(self, state: LogLinearState, max_tokens: int):
        if not (isinstance(state, tuple) and len(state) == 2):
            raise TypeError(f"state: expected a loglinear.torch.LogLinearState (states, tokens), got "
                            f"{type(state).__name__}")
        states, tokens = state
        _check_tensor("state.states", states)
        _check_tensor("state.tokens", tokens, states.device)
        if states.dim() != 5:
            raise ValueError(f"state.states: expected [B,H,L,K,V], got shape {tuple(states.shape)}")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise TypeError(f"max_tokens: expected an int, got {type(max_tokens).__name__}")
        B = states.shape[0]
        counts = _stream_tokens(tokens, B)  # once, here; never per step
        if max_tokens < max(counts + [1]) or max_tokens > 2 ** 40:
            raise ValueError(f"max_tokens: expected an int in [max(state.tokens) = {max(counts + [0])}, 2**40] "
                             f"(and >= 1), got {max_tokens}")
        L = _core.num_levels(max_tokens)
        held = max(_core.num_levels(n) if n else 0 for n in counts)
        if states.shape[2] < held:
            raise ValueError(f"state.states: expected at least num_levels(max(state.tokens)) = {held} levels, got "
                             f"{states.shape[2]}")
        self.cuda = states.is_cuda
        if self.cuda:
            _require_cuda_backend()
        dtype = torch.float32 if self.cuda else states.dtype
        # The buffer is sized by max_tokens, not by the state passed in (which may hold 0 levels):
        # refuse one larger than the device before allocating anything.
        shape = tuple(states.shape[:2]) + (L,) + tuple(states.shape[3:])
        need = math.prod(shape) * torch.tensor([], dtype=dtype).element_size()
        have = (torch.cuda.get_device_properties(states.device).total_memory if self.cuda
                else os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        if need > have:
            raise ValueError(f"max_tokens: a state buffer of shape {list(shape)} needs {need} bytes, more than the "
                             f"{have} bytes of {states.device}; decode fewer streams or tokens")
        # Buffers outside autograd: the kernel updates them in place, and a prefill's graph must
        # not be kept alive through them.
        states, tokens = states.detach(), tokens.detach()
        self.states = torch.zeros(shape, dtype=dtype, device=states.device)
        for b, n in enumerate(counts):  # each row's own levels; the padding above stays zero
            lv = _core.num_levels(n) if n else 0
            self.states[b, :, :lv] = states[b, :, :lv]
        self.tokens = tokens.to(torch.int64).clone()
        self.max_tokens = max_tokens

    @property
    def state(self) -> LogLinearState:
        """The current state as a ``LogLinearState`` (views of the buffers, zero-padded levels)."""
        return LogLinearState(self.states, self.tokens)

    def step(self, q_t: torch.Tensor, k_t: torch.Tensor, v_t: torch.Tensor, g_t: torch.Tensor,
             level_scales_t: torch.Tensor) -> torch.Tensor:
        """Consumes one token of every stream (shapes as ``decode_step``) and returns o_t
        ``[B,1,H,V]`` (float32 on the GPU, the state's dtype on the CPU). No value checks on the
        GPU (they would synchronise); the shapes are checked on the host."""
        if not self.cuda:
            if int(self.tokens.max()) >= self.max_tokens:
                raise ValueError(f"Decoder.step: a stream already holds max_tokens = {self.max_tokens} tokens; "
                                 "make a Decoder with a larger max_tokens from .state")
            with torch.no_grad():
                o, (st, tok) = decode_step(q_t, k_t, v_t, g_t, level_scales_t, self.state)
            self.states[:, :, :st.shape[2]] = st
            self.tokens.copy_(tok)
            return o
        for name, t in zip(_NAMES, (q_t, k_t, v_t, g_t, level_scales_t)):
            _check_tensor(name + "_t", t, self.states.device)
        x = [t.detach().to(torch.float32).contiguous() for t in (q_t, k_t, v_t, g_t, level_scales_t)]
        B, H, Lmax, K, V = self.states.shape
        G = x[0].shape[2] if x[0].dim() == 4 else 0
        shapes = ((B, 1, G, K), (B, 1, G, K), (B, 1, H, V), (B, 1, H), (B, 1, H, x[4].shape[-1]))
        for name, t, want in zip(_NAMES, x, shapes):
            if tuple(t.shape) != want:
                raise ValueError(f"{name}_t: expected shape {want} (the state's B, H, K, V and q_t's G), got "
                                 f"{tuple(t.shape)}")
        o = torch.empty((B, 1, H, V), dtype=torch.float32, device=self.states.device)
        with torch.cuda.device(self.states.device):
            try:
                # max_tokens: the largest count the Lmax levels hold, so that the host reads none.
                _core._cuda_decode_device(B, H, G, K, V, x[4].shape[-1], Lmax, 2 ** (Lmax - 1) - 1,
                                          [t.data_ptr() for t in (self.states, *x, o)],
                                          torch.cuda.current_stream(self.states.device).cuda_stream,
                                          self.tokens.data_ptr(), True)
            except (ValueError, TypeError) as e:
                raise _renamed(e) from None
        # A stream at 2^(Lmax-1) tokens, the most its levels hold, got NaN and kept its state: its
        # count stays too (in place, no host read).
        self.tokens.add_(1).clamp_(max=2 ** (Lmax - 1))
        return o

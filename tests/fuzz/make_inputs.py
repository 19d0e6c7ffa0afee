#!/usr/bin/env python3
"""Writes the seed corpora (corpus/<target>/) and the hand-encoded regression inputs
(regressions/<target>/) of the libFuzzer targets, in the input layouts that
checkpoint_harness.hpp and tasks_harness.hpp decode. Run it after changing a layout:

    /usr/bin/python3 tests/fuzz/make_inputs.py

Inputs that libFuzzer found are committed as it wrote them (crash-<sha1>); this script writes
only the named ones below, each a readable statement of the arguments it stands for.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


# --- the decoder of fuzz_support.hpp, inverted -------------------------------------------------
def small(x):  # class 0: byte % 16
    assert 0 <= x < 16
    return bytes([0, x])


def u8(x):  # class 1: one byte
    return bytes([1, x])


def u16(x):  # class 2: two bytes, little-endian
    return bytes([2]) + struct.pack("<H", x)


def neg(x):  # class 4: -byte
    return bytes([4, x])


def edge(name):  # class 5: an extreme of int64 / 32-bit arithmetic
    edges = ["max", "min", "max/2", "2^31", "2^31-1", "2^32", "2^62", "-1"]
    return bytes([5, edges.index(name)])


def raw(x):  # class 6: eight raw bytes
    return bytes([6]) + struct.pack("<q", x)


def seed(x=1):
    return struct.pack("<Q", x)


def fraction(byte):  # FuzzInput::real class 0: byte / 255
    return bytes([0, byte])


# --- task inputs (tasks_harness.hpp: first byte picks the generator) ---------------------------
def mqar(length, pairs, vocab, count):
    return bytes([0]) + length + pairs + vocab + count + seed()


def selective_copy(length, tokens, count):
    return bytes([1]) + length + tokens + count + seed()


def char_lm(frac, count, length, max_windows, text):
    return bytes([2]) + frac + count + length + max_windows + seed() + text


def dataset(begin, end, indices):
    out = bytes([3]) + seed() + begin + end + bytes([len(indices)])
    for i in indices:
        out += i
    return out


TEXT = b"In the beginning God created the heaven and the earth. And the earth was without form, and void; " \
       b"and darkness was upon the face of the deep."

TASK_SEEDS = {
    "mqar-T64-n8-V128": mqar(u8(64), small(8), u8(128), small(4)),
    "mqar-T16-n4-V16": mqar(u8(16), small(4), u8(16), small(2)),
    "selective-copy-T33-n16": selective_copy(u8(33), small(15), small(2)),
    "char-lm-windows": char_lm(fraction(60), small(3), small(8), small(4), TEXT),
    "dataset-range-gather": dataset(small(0), small(3), [small(0), small(3), small(5)]),
}

# Settings that broke the generators before their checks (issue 11); each line: what it is.
TASK_REGRESSIONS = {
    # --quick --pairs 1000 --length 16 as the CLI would pass it (refused with the numbers).
    "mqar-pairs-1000-length-16": mqar(u8(16), u16(1000), u8(128), u16(2000)),
    # count * length overflowed int64 in the tensor's size (UBSan), then a huge allocation.
    "mqar-count-times-length-overflows": mqar(edge("max"), small(1), u8(128), small(3)),
    # count * length = 40000 * 2^32: an allocation of 687 TB was attempted.
    "mqar-huge-count": mqar(edge("2^32"), small(1), u8(128), u16(40000)),
    # vocab 2^62 - 1: the key pool (vocab/2 int32) was sized after a truncation to int32.
    "mqar-vocab-2^62": mqar(u16(16640), u8(105), edge("max/2"), small(1)),
    # selective copying: count * length overflowed, then 75 GB of tokens were allocated.
    "selective-copy-count-times-length-overflows": selective_copy(edge("max"), small(3), small(3)),
    "selective-copy-huge-allocation": selective_copy(edge("2^31"), small(3), u16(40000)),
    # valid_windows(length 0): an integer division by zero (SIGFPE) before the length check.
    "char-lm-valid-windows-length-0": char_lm(fraction(60), small(1), small(0), small(4), TEXT),
    # sample_train(count -5): a std::vector of 2^64 - 5 entries (std::length_error).
    "char-lm-negative-count": char_lm(fraction(60), neg(5), small(8), small(4), TEXT),
    # sample_train(length INT64_MAX): length + 1 overflowed (UBSan) in the range check.
    "char-lm-length-int64-max": char_lm(fraction(60), small(1), edge("max"), small(4), TEXT),
    # valid_fraction NaN must be refused by name (it was; kept as a boundary).
    "char-lm-fraction-nan": bytes([2, 1, 2]) + small(1) + small(4) + small(1) + seed() + TEXT,
}


# --- checkpoint inputs (checkpoint_harness.hpp) ------------------------------------------------
PARAMS = [("embedding", 2, 3), ("norm.weight", 1, 3), ("empty", 0, 5), ("scale", 1, 1)]
ARCH = "fuzz model"


def fnv1a(data):
    h = 14695981039346656037
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def checkpoint_file(v1=False, arch="", values=None, count=None, override=None):
    """The bytes of checkpoint.hpp's format for PARAMS; override maps a name to (len, rows, cols)."""
    n = sum(r * c for _, r, c in PARAMS)
    values = values if values is not None else [0.25 * (i + 1) - 1 for i in range(n)]
    out = b"LLCKPT01" if v1 else b"LLCKPT02"
    out += struct.pack("<I", count if count is not None else len(PARAMS) + (1 if arch else 0))

    def header(name, rows, cols):
        length = len(name)
        if override and name in override:
            length, rows, cols = override[name]
        return struct.pack("<I", length) + name.encode() + struct.pack("<qq", rows, cols)

    if arch:
        out += header("@" + arch, 0, 0)
    k = 0
    for name, rows, cols in PARAMS:
        out += header(name, rows, cols)
        for _ in range(rows * cols):
            out += struct.pack("<d", values[k])
            k += 1
    out += b"LLCKPTEN"
    if not v1:
        out += struct.pack("<Q", fnv1a(out))
    return out


# mode byte, flags byte (bit0 v1, bit1 arch entry, bit2 float, bits3-4 expected arch, bit5 refix
# the checksum, bit6 values from the input), then the mode's bytes.
def raw_mode(data, flags=0):
    return bytes([0, flags]) + data


def with_checksum(data, flags=0):
    return bytes([1, flags]) + data


def structured(flags, edits=(), via_file=False):
    out = bytes([3 if via_file else 2, flags])
    out += bytes([len(edits)])
    for op, at, extra in edits:
        out += bytes([op]) + struct.pack("<H", at) + extra
    return out


CHECKPOINT_SEEDS = {
    "v2-file": raw_mode(checkpoint_file()),
    "v2-file-arch-float": raw_mode(checkpoint_file(arch=ARCH), flags=4 | 8),
    "v1-file": raw_mode(checkpoint_file(v1=True)),
    "structured-v2-arch": structured(2 | 8),
    "structured-v1-float-one-truncation": structured(1 | 4, [(0, 40, b"")]),
    "structured-field-overwrite-refixed": structured(32, [(2, 0, bytes([0]))]),
    "structured-via-file": structured(2 | 8, via_file=True),
}

NAN = float("nan")
CHECKPOINT_REGRESSIONS = {
    # Values that are not finite, or too large for float, were loaded silently (a v1 file has no
    # checksum to catch a flipped exponent bit): now "corrupt value of embedding at [0,1]".
    "v1-nan-value": raw_mode(checkpoint_file(v1=True, values=[0.5, NAN, 0, 0, 0, 0, 0, 0, 0, 0])),
    "v1-float-overflow": raw_mode(checkpoint_file(v1=True, values=[1e300] + [0.0] * 9), flags=4),
    # A declared count of 2^32 - 1 entries in a 100-byte file: refused as corrupt, not a mismatch.
    "v1-huge-count": raw_mode(checkpoint_file(v1=True, count=0xFFFFFFFF)),
    # A name length of 4096 (the cap) with nothing behind it, and one of 2^32 - 1.
    "v1-name-length-past-end": raw_mode(checkpoint_file(v1=True, override={"embedding": (4096, 2, 3)})),
    "v2-name-length-huge": with_checksum(checkpoint_file(override={"embedding": (0xFFFFFFFF, 2, 3)})[:-8]),
    # Shapes whose values cannot be in the file: 2^20 x 2^20, 2^40 x 1, INT64_MAX x 2, -1 x 3.
    "v1-shape-2^40": raw_mode(checkpoint_file(v1=True, override={"embedding": (9, 1 << 20, 1 << 20)})),
    "v1-shape-int64-max": raw_mode(checkpoint_file(v1=True, override={"embedding": (9, (1 << 63) - 1, 2)})),
    "v2-shape-negative": with_checksum(checkpoint_file(override={"embedding": (9, -1, 3)})[:-8]),
}


def write(folder, inputs):
    os.makedirs(folder, exist_ok=True)
    for name, data in inputs.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write(os.path.join(HERE, "corpus", "tasks"), TASK_SEEDS)
    write(os.path.join(HERE, "corpus", "checkpoint"), CHECKPOINT_SEEDS)
    write(os.path.join(HERE, "regressions", "tasks"), TASK_REGRESSIONS)
    write(os.path.join(HERE, "regressions", "checkpoint"), CHECKPOINT_REGRESSIONS)

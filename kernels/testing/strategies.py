"""Hypothesis strategies for attention and matmul inputs, written once and reused by every
kernel's tests and by the verifier.

    attention_cases(...)  ->  AttentionCase(q, k, v, dout, key_padding_mask, causal, scale)

Shapes are drawn independently (Nq != Nk, head dims that are not powers of two, sizes around
block boundaries), GQA groups, padding masks that hide whole rows and the last key, and value
scales up to large-magnitude logits (|q.k| * scale up to `max_logit`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from hypothesis import strategies as st


def boundary_sizes(low: int, high: int) -> list[int]:
    """Sizes 2^k - 1, 2^k, 2^k + 1 within [low, high]: where block-tiling bugs live."""
    sizes = set()
    power = 1
    while power <= high + 1:
        for s in (power - 1, power, power + 1):
            if low <= s <= high:
                sizes.add(s)
        power *= 2
    return sorted(sizes)


def sizes(low: int, high: int) -> st.SearchStrategy[int]:
    """An integer in [low, high], with the boundary sizes drawn often."""
    edges = boundary_sizes(low, high)
    anywhere = st.integers(low, high)
    return st.one_of(st.sampled_from(edges), anywhere) if edges else anywhere


@dataclass
class AttentionCase:
    q: np.ndarray                 # (B, H, Nq, D)
    k: np.ndarray                 # (B, Hkv, Nk, D)
    v: np.ndarray                 # (B, Hkv, Nk, D)
    dout: np.ndarray              # (B, H, Nq, D)
    key_padding_mask: np.ndarray | None   # (B, Nk) bool, True = ignore
    causal: bool
    scale: float | None
    seed: int

    def kwargs(self) -> dict:
        return dict(causal=self.causal, key_padding_mask=self.key_padding_mask, scale=self.scale)

    def astype(self, dtype) -> "AttentionCase":
        cast = lambda x: x.astype(dtype)
        return AttentionCase(cast(self.q), cast(self.k), cast(self.v), cast(self.dout),
                             self.key_padding_mask, self.causal, self.scale, self.seed)

    def describe(self) -> str:
        b, h, nq, d = self.q.shape
        hkv, nk = self.k.shape[1], self.k.shape[2]
        masked = "none" if self.key_padding_mask is None else f"{int(self.key_padding_mask.sum())} keys"
        return (f"B={b} H={h} Hkv={hkv} Nq={nq} Nk={nk} D={d} causal={self.causal} scale={self.scale} "
                f"mask={masked} dtype={self.q.dtype} seed={self.seed}")


@st.composite
def attention_cases(draw, *, max_batch=2, max_heads=4, max_seq_q=64, max_seq_k=64, min_head_dim=1,
                    max_head_dim=80, head_dims=None, dtype=np.float64, causal=None, gqa=True,
                    masks=True, max_logit=30.0, identical_keys=True) -> AttentionCase:
    """Draw one attention problem. `causal=None` draws it; `head_dims` fixes a list to sample."""
    batch = draw(st.integers(1, max_batch))
    kv_heads = draw(st.integers(1, max_heads))
    group = draw(st.integers(1, max(1, max_heads // kv_heads))) if gqa else 1
    heads = kv_heads * group
    seq_q = draw(sizes(1, max_seq_q))
    seq_k = draw(sizes(1, max_seq_k))
    head_dim = draw(st.sampled_from(head_dims)) if head_dims else draw(sizes(min_head_dim, max_head_dim))
    is_causal = draw(st.booleans()) if causal is None else causal
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    # Target logit magnitude |q.k| * scale: from tiny to large. With unit normal q, k the logits
    # have std ~ sqrt(D) * scale * amp^2 = amp^2 at the default scale.
    logit = draw(st.sampled_from([1e-3, 1.0, 3.0, max_logit]))
    amp = math.sqrt(logit)
    q = rng.standard_normal((batch, heads, seq_q, head_dim)) * amp
    k = rng.standard_normal((batch, kv_heads, seq_k, head_dim)) * amp
    v = rng.standard_normal((batch, kv_heads, seq_k, head_dim))
    if identical_keys and seq_k > 1 and draw(st.booleans()):
        k[:, :, 1:] = k[:, :, :1]                                      # all keys equal: uniform rows
    dout = rng.standard_normal((batch, heads, seq_q, head_dim))
    mask = None
    if masks and draw(st.booleans()):
        mask = rng.random((batch, seq_k)) < draw(st.sampled_from([0.0, 0.3, 0.7]))
        if draw(st.booleans()):
            mask[:, -1] = True                                         # the last key always padded
        if batch > 1 and draw(st.booleans()):
            mask[-1, :] = True                                         # a batch row with no key at all
    use_default_scale = draw(st.booleans())
    scale = None if use_default_scale else draw(st.sampled_from([0.05, 0.3, 1.0]))
    case = AttentionCase(q, k, v, dout, mask, is_causal, scale, seed)
    return case.astype(dtype)


@st.composite
def matmul_cases(draw, *, max_dim=200, dtype=np.float64, transposed=True):
    """Draw (a (M, K), b (K, N)); sometimes non-contiguous (transposed or strided views)."""
    m, k, n = draw(sizes(1, max_dim)), draw(sizes(1, max_dim)), draw(sizes(1, max_dim))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    if transposed and draw(st.booleans()):
        a = np.asfortranarray(a)
    if transposed and draw(st.booleans()):
        b = rng.standard_normal((n, k)).astype(dtype).T               # a transposed view
    return a, b


# ---------------------------------------------------------------------------------------------
# Specs: a small, shrinkable description of one attention problem, built deterministically.
# The verifier draws specs (not arrays) so that hypothesis shrinks shapes and flags, the report
# can print the case in one line, and a reproducer can rebuild it.
# ---------------------------------------------------------------------------------------------

LOGIT_SCALES = (1.0, 1e-3, 30.0, 1e3)      # target std of the scaled logits, simplest first
MASK_FRACTIONS = (0.0, 0.3, 0.7)


@dataclass(frozen=True)
class AttentionSpec:
    batch: int = 1
    kv_heads: int = 1
    group: int = 1                 # query heads per key/value head (GQA); H = kv_heads * group
    seq_q: int = 1
    seq_k: int = 1
    head_dim: int = 1
    causal: bool = False
    logit: float = 1.0             # target std of scale * q.k (1e-3 .. 1e3)
    identical_keys: bool = False   # every key equal to the first: uniform attention rows
    mask_fraction: float | None = None   # None: no key_padding_mask; else P(key padded)
    mask_last_key: bool = False    # the last key padded in every batch row
    mask_last_row: bool = False    # the last batch row has every key padded (no visible key)
    keep_first_key: bool = False   # unpad key 0 everywhere: no row without a visible key
    scale: float | None = None     # None: the default 1/sqrt(D)
    dtype: str = "float64"
    seed: int = 0

    @property
    def heads(self) -> int:
        return self.kv_heads * self.group

    def size(self) -> tuple:
        """Sort key for 'smallest case': element count first, then flags."""
        elements = self.batch * self.heads * self.seq_q * self.seq_k * self.head_dim
        return (elements, self.batch, self.heads, self.seq_q + self.seq_k, self.head_dim, self.causal,
                self.mask_fraction is not None, self.mask_last_key, self.mask_last_row,
                LOGIT_SCALES.index(self.logit) if self.logit in LOGIT_SCALES else 9,
                self.identical_keys, self.scale is not None, self.seed)

    def describe(self, alignment: str = "bottom-right") -> str:
        causal = f"causal={alignment}" if self.causal else "causal=no"
        if self.mask_fraction is None:
            mask = "mask=none"
        else:
            parts = [f"p={self.mask_fraction}"]
            if self.mask_last_key:
                parts.append("last key")
            if self.mask_last_row:
                parts.append("last batch row fully padded")
            mask = "mask=(" + ", ".join(parts) + ")"
        scale = "scale=1/sqrt(D)" if self.scale is None else f"scale={self.scale}"
        keys = " identical-keys" if self.identical_keys else ""
        return (f"B={self.batch} H={self.heads} Hkv={self.kv_heads} Nq={self.seq_q} Nk={self.seq_k} "
                f"D={self.head_dim} {causal} {mask} {scale} logits~{self.logit:g}{keys} "
                f"dtype={self.dtype} seed={self.seed}")


def effective_scale(spec: AttentionSpec) -> float:
    return 1.0 / math.sqrt(spec.head_dim) if spec.scale is None else float(spec.scale)


def round_to_bfloat16(x: np.ndarray) -> np.ndarray:
    """Round float values to the nearest bfloat16 (ties to even); returned as float32."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return ((bits + rounding) & np.uint32(0xFFFF0000)).view(np.float32)


def round_to_dtype(x: np.ndarray, dtype: str) -> np.ndarray:
    """The float64 values a kernel of `dtype` actually receives (input rounding is not its error)."""
    if dtype == "bfloat16":
        return round_to_bfloat16(x).astype(np.float64)
    return np.asarray(x).astype(dtype).astype(np.float64)


def build_attention_case(spec: AttentionSpec) -> AttentionCase:
    """The arrays of `spec`, as float64 holding values exactly representable in `spec.dtype`."""
    rng = np.random.default_rng(spec.seed)
    b, h, hkv, nq, nk, d = spec.batch, spec.heads, spec.kv_heads, spec.seq_q, spec.seq_k, spec.head_dim
    # std(scale * q.k) = amp^2 * sqrt(D) * scale for unit-normal q, k scaled by amp.
    amp = math.sqrt(spec.logit / (math.sqrt(d) * effective_scale(spec)))
    q = rng.standard_normal((b, h, nq, d)) * amp
    k = rng.standard_normal((b, hkv, nk, d)) * amp
    v = rng.standard_normal((b, hkv, nk, d))
    dout = rng.standard_normal((b, h, nq, d))
    if spec.identical_keys:
        k[:, :, 1:] = k[:, :, :1]
    mask = None
    if spec.mask_fraction is not None:
        mask = rng.random((b, nk)) < spec.mask_fraction
        if spec.mask_last_key:
            mask[:, -1] = True
        if spec.mask_last_row:
            mask[-1, :] = True
        if spec.keep_first_key:
            mask[:, 0] = False
    rounded = [round_to_dtype(x, spec.dtype) for x in (q, k, v, dout)]
    return AttentionCase(*rounded, mask, spec.causal, spec.scale, spec.seed)


@st.composite
def attention_specs(draw, *, dtypes=("float64",), max_batch=2, max_heads=4, max_seq_q=64, max_seq_k=64,
                    head_dims=None, max_head_dim=64, causal=(False, True), gqa=True, equal_lengths=False,
                    masks=True, empty_rows=True, custom_scale=True, max_logit=1e3,
                    identical_keys=True, bottom_right=True) -> AttentionSpec:
    """Draw an AttentionSpec within what a kernel claims to support.

    `causal` lists the flag values to draw; `equal_lengths` forces Nq == Nk; `empty_rows=False`
    keeps every query row with at least one visible key (no fully padded row, Nq <= Nk under
    bottom-right causal); `head_dims` (a list) restricts D, else D in [1, max_head_dim].
    """
    dtype = draw(st.sampled_from(list(dtypes)))
    batch = draw(st.integers(1, max_batch))
    kv_heads = draw(st.integers(1, max_heads))
    group = draw(st.integers(1, max(1, max_heads // kv_heads))) if gqa else 1
    seq_q = draw(sizes(1, max_seq_q))
    seq_k = seq_q if equal_lengths else draw(sizes(1, max_seq_k))
    head_dim = draw(st.sampled_from(sorted(head_dims))) if head_dims else draw(sizes(1, max_head_dim))
    is_causal = draw(st.sampled_from(list(causal)))
    logit = draw(st.sampled_from([s for s in LOGIT_SCALES if s <= max_logit]))
    same_keys = identical_keys and seq_k > 1 and draw(st.booleans())
    fraction, last_key, last_row = None, False, False
    if masks and draw(st.booleans()):
        fraction = draw(st.sampled_from(MASK_FRACTIONS))
        last_key = draw(st.booleans())
        last_row = empty_rows and batch > 1 and draw(st.booleans())
    scale = draw(st.sampled_from([None, 0.05, 0.3, 1.0])) if custom_scale else None
    seed = draw(st.integers(0, 2**31 - 1))
    spec = AttentionSpec(batch, kv_heads, group, seq_q, seq_k, head_dim, is_causal, logit, same_keys,
                         fraction, last_key, last_row, not empty_rows, scale, dtype, seed)
    return constrain_spec(spec, empty_rows=empty_rows, bottom_right=bottom_right, equal_lengths=equal_lengths)


def constrain_spec(spec: AttentionSpec, *, empty_rows=True, bottom_right=True, equal_lengths=False) -> AttentionSpec:
    """Make a spec respect the claims: equal lengths, and no row without a key when not claimed."""
    changes = {}
    if equal_lengths and spec.seq_k != spec.seq_q:
        changes["seq_k"] = spec.seq_q
    if not empty_rows:
        changes.update(keep_first_key=True, mask_last_row=False)
        seq_k = changes.get("seq_k", spec.seq_k)
        if spec.causal and bottom_right and spec.seq_q > seq_k:
            changes["seq_q"] = seq_k          # bottom-right causal: rows i < Nq - Nk see no key
    if spec.seq_k < 2 and spec.identical_keys:
        changes["identical_keys"] = False
    if spec.batch < 2 and spec.mask_last_row:
        changes["mask_last_row"] = False
    return replace(spec, **changes) if changes else spec


def boundary_specs(*, dtypes=("float64",), max_batch=2, max_heads=4, max_seq_q=64, max_seq_k=64,
                   head_dims=None, max_head_dim=64, causal=(False, True), gqa=True, equal_lengths=False,
                   masks=True, empty_rows=True, custom_scale=True, max_logit=1e3, identical_keys=True,
                   bottom_right=True) -> list[AttentionSpec]:
    """A fixed sweep tried before any random example: every boundary size 2^k - 1, 2^k, 2^k + 1
    appears as Nq, as Nk and (where allowed) as D, crossed with causal, masks, GQA and logit scales."""
    seq_sizes_q = boundary_sizes(1, max_seq_q)
    seq_sizes_k = boundary_sizes(1, max_seq_k)
    dims = sorted(head_dims) if head_dims else boundary_sizes(1, max_head_dim)
    logits = [s for s in LOGIT_SCALES if s <= max_logit]
    count = max(len(seq_sizes_q), len(seq_sizes_k), len(dims))
    specs = []
    for dtype in dtypes:
        for i in range(count):
            seq_q = seq_sizes_q[i % len(seq_sizes_q)]
            seq_k = seq_sizes_k[(i * 5 + 3) % len(seq_sizes_k)]
            batch = 1 + i % max_batch
            gqa_here = gqa and max_heads >= 2 and i % 4 == 3
            kv_heads, group = (1, 2) if gqa_here else (1 + (i % 2 if max_heads >= 2 else 0), 1)
            mask_kind = i % 3 if masks else 0
            fraction = None if mask_kind == 0 else (0.3 if mask_kind == 1 else 0.0)
            spec = AttentionSpec(
                batch=batch, kv_heads=kv_heads, group=group, seq_q=seq_q, seq_k=seq_k,
                head_dim=dims[(i * 7) % len(dims)], causal=causal[i % len(causal)],
                logit=logits[(i + 1) % len(logits)], identical_keys=identical_keys and i % 5 == 4,
                mask_fraction=fraction, mask_last_key=mask_kind != 0, mask_last_row=mask_kind == 2,
                keep_first_key=not empty_rows, scale=0.3 if custom_scale and i % 4 == 1 else None,
                dtype=dtype, seed=i)
            specs.append(constrain_spec(spec, empty_rows=empty_rows, bottom_right=bottom_right,
                                        equal_lengths=equal_lengths))
    return specs

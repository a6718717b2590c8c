"""What a kernel claims. Only claimed features are tested; the report lists the rest as untested.

`Supports()` with no arguments claims the whole contract of ARCHITECTURE.md (what the NumPy
reference does): bottom-right causal, padding masks, GQA, Nq != Nk, any head dim, float32 and
float64, (out, lse) from the forward, a backward, rows with no visible key.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

ALIGNMENTS = ("bottom-right", "top-left")


@dataclass(frozen=True)
class Supports:
    causal: str | None = "bottom-right"      # "bottom-right" (j <= i + Nk - Nq), "top-left" (j <= i), None
    padding_mask: bool = True                # key_padding_mask (B, Nk) bool, True = ignore
    gqa: bool = True                         # Hkv < H, Hkv dividing H
    unequal_lengths: bool = True             # Nq != Nk
    head_dims: tuple[int, int] = (1, 64)     # D from min to max (inclusive) ...
    head_dim_values: tuple[int, ...] | None = None   # ... or only these values
    dtypes: tuple[str, ...] = ("float32", "float64")
    returns_lse: bool = True                 # forward returns (out, lse) rather than out
    backward: bool | None = None             # None: claimed when a backward (or torch autograd) is given
    empty_rows: bool = True                  # a row with no visible key: out 0, lse -inf, zero grads
    custom_scale: bool = True                # scale other than 1/sqrt(D)
    deterministic: bool = True               # bit-identical results over repeats

    def __post_init__(self):
        if self.causal not in ALIGNMENTS + (None,):
            raise ValueError(f"Supports.causal must be 'bottom-right', 'top-left' or None; got {self.causal!r}")
        if isinstance(self.dtypes, str):
            object.__setattr__(self, "dtypes", (self.dtypes,))

    def to_dict(self) -> dict:
        return asdict(self)

    def untested(self, has_backward: bool) -> list[str]:
        """Features of the full contract this kernel does not claim, so the verifier did not test."""
        missing = []
        if self.causal is None:
            missing.append("causal masking")
        elif self.causal == "top-left":
            missing.append("bottom-right causal alignment (tested against top-left as declared)")
        for claimed, name in ((self.padding_mask, "key_padding_mask"), (self.gqa, "grouped-query attention (Hkv < H)"),
                              (self.unequal_lengths, "Nq != Nk"), (self.returns_lse, "lse from the forward"),
                              (has_backward, "backward (dq, dk, dv)"), (self.custom_scale, "custom scale"),
                              (self.deterministic, "determinism over repeats")):
            if not claimed:
                missing.append(name)
        if not self.empty_rows:
            missing.append("rows with no visible key (output 0, lse -inf, zero gradients)")
        if self.head_dim_values is not None:
            missing.append(f"head dims other than {list(self.head_dim_values)}")
        for dtype in ("float32", "float64"):
            if dtype not in self.dtypes:
                missing.append(f"dtype {dtype}")
        return missing

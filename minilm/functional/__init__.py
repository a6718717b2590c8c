"""Fused ops with hand-written backward passes (each a Function: forward and backward side by side).

    import minilm.functional as F
    F.linear, F.embedding, F.layer_norm, F.softmax, F.log_softmax, F.cross_entropy, F.dropout,
    F.attention, F.lstm, F.lora_linear
and the element-wise activations of the engine, for convenience: F.gelu, F.relu, F.sigmoid, F.tanh
"""
from .attention import attention
from .dropout import dropout
from .embedding import embedding
from .layer_norm import layer_norm
from .linear import linear
from .losses import cross_entropy
from .lora import lora_linear
from .lstm import lstm
from .softmax import log_softmax, softmax
from ..autograd.ops import gelu, relu, sigmoid, tanh  # noqa: E402  (thin aliases)

"""Layers (modules) built on the fused functional ops, PyTorch-style."""
from .attention import KVCache, LayerCache, MultiHeadAttention
from .layers import (Dropout, Embedding, FeedForward, LayerNorm, LearnedPositionalEncoding, Linear,
                     SinusoidalPositionalEncoding, set_init_seed, sinusoidal_table)
from .lora import LoRALinear
from .lstm import LSTM
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
from .transformer import TransformerBlock

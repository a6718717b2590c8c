"""Testing tools for attention kernels: hypothesis strategies (and the attention verifier)."""

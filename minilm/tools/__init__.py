"""Tools to study training: gradient-health plots, attention maps, the `walk` through a backward pass."""

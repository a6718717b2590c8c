"""Errors raised by the kernels package (it never imports minilm, so it has its own)."""


class KernelInputError(ValueError):
    """Bad input to a kernel: names the argument, the expected and the actual shape or dtype."""


class BackendNotAvailable(ImportError):
    """A backend was asked for but its optional dependency is missing or unusable here."""

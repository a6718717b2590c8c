"""minilm's errors: each names the op or argument, what was expected and what was given."""


class MinilmError(Exception):
    """Base class of every error minilm raises on purpose."""


class ShapeError(MinilmError, ValueError):
    """Shapes that do not fit: names the op, the expected and the actual shapes."""


class DTypeError(MinilmError, TypeError):
    """A dtype that the op cannot take (ints where floats are needed, mixed dtypes...)."""


class GradError(MinilmError, RuntimeError):
    """Misuse of backward: a tensor that does not require grad, a non-scalar without `grad`..."""


class NonFiniteError(MinilmError, FloatingPointError):
    """A NaN or inf where none may pass silently (losses, gradients, anomaly mode)."""

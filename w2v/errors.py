"""Errors of training itself, importable without Numba (the CLI catches them on every path)."""


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, a corpus changed under a checkpoint)."""


class ResourceError(ValueError):
    """The machine cannot hold the model."""

"""Errors of training itself, importable without Numba (the CLI catches them on every path)."""


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, a corpus changed under a checkpoint)."""


class ResourceError(ValueError):
    """The machine cannot hold the model."""


class WorkersLost(TrainingError):
    """Training lost workers it could not bring back (a Ray actor whose restarts ran out); the
    trainer's state is consistent for a checkpoint, from which the run can be resumed."""

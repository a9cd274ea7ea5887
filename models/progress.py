"""What a training run reports and what its caller can ask of it: progress, stop, step limit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.errors import AeseekError, ErrorCode


@dataclass
class Progress:
    """Where a training run stands; passed to the progress callback after every step."""

    epoch: int
    epochs: int
    step: int
    steps_total: int
    loss: float
    images_per_s: float
    eta_s: float
    phase: str = "train"

    @property
    def fraction(self) -> float:
        """Share of this phase's steps done, in [0, 1]."""
        return self.step / self.steps_total if self.steps_total else 1.0


ProgressCallback = Callable[[Progress], None]


class TrainingDiverged(AeseekError):
    """The loss became NaN or infinite."""

    code = ErrorCode.TRAINING_DIVERGED


class TrainingStopped(AeseekError):
    """The caller asked the run to stop (a cancelled job)."""

    code = ErrorCode.TRAINING_STOPPED


@dataclass
class Hooks:
    """What a loop reports to and asks of its caller."""

    on_progress: ProgressCallback | None = None
    should_stop: Callable[[], bool] | None = None
    max_steps: int | None = None

    def check_stop(self) -> None:
        """Raise TrainingStopped when the caller asked to stop."""
        if self.should_stop is not None and self.should_stop():
            raise TrainingStopped("training was stopped on request")

"""Progress bars for the command line."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

from models.progress import Progress


class TrainingBar:
    """A tqdm bar per training phase showing epoch, loss, images/s and ETA."""

    def __init__(self) -> None:
        self.bar: tqdm[Any] | None = None
        self.phase: str | None = None

    def __call__(self, progress: Progress) -> None:
        if self.bar is None or progress.phase != self.phase:
            self.close()
            self.phase = progress.phase
            self.bar = tqdm(total=progress.steps_total, unit="step", dynamic_ncols=True, initial=progress.step - 1)
        label = "" if progress.phase == "train" else f"{progress.phase}, "
        self.bar.set_description(f"{label}epoch {progress.epoch}/{progress.epochs}", refresh=False)
        self.bar.set_postfix(loss=f"{progress.loss:.4f}", img_s=f"{progress.images_per_s:.0f}", refresh=False)
        self.bar.update(progress.step - self.bar.n)

    def close(self) -> None:
        """Finish the current bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

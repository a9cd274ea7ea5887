"""Plots as PNG (matplotlib, headless): loss curves, labelled image grids, latent scatter maps.

Figures are made with matplotlib's object API, never pyplot: pyplot keeps global state that
is not safe across the server's threads, while a `Figure` of one's own is.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from app.rendering.png import grid


def curves_png(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    log_x: bool = False,
    ylabel: str = "loss",
) -> bytes:
    """Named (x, y) curves on one plot (log y when all positive), as PNG."""
    figure, axes = _figure((6.4, 3.6))
    for name, (xs, ys) in curves.items():
        axes.plot(xs, ys, marker="o" if len(xs) < 30 else None, label=name)
    positive = all(y > 0 for _, ys in curves.values() for y in ys)
    if positive:
        axes.set_yscale("log")
    if log_x:
        axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if len(curves) > 1:
        axes.legend(fontsize="small")
    return _png(figure)


def labelled_grid_png(rows: Sequence[tuple[str, Sequence[np.ndarray]]], title: str | None = None) -> bytes:
    """Rows of uint8 images with a label at the left of each row, as PNG."""
    canvas = grid([images for _, images in rows])
    height = rows[0][1][0].shape[0] + 2
    figure, axes = _figure((1.0 + canvas.shape[1] / 40, 0.4 + canvas.shape[0] / 40))
    axes.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    axes.set_yticks([r * height + height / 2 - 1 for r in range(len(rows))], [label for label, _ in rows])
    axes.set_xticks([])
    axes.tick_params(length=0)
    for spine in axes.spines.values():
        spine.set_visible(False)
    if title:
        axes.set_title(title)
    return _png(figure)


def scatter_png(points: np.ndarray, labels: np.ndarray, title: str, marker: tuple[float, float] | None = None) -> bytes:
    """2-D points coloured by digit label (tab10), with an optional query marker, as PNG."""
    figure, axes = _figure((6, 6))
    for digit in range(10):
        chosen = labels == digit
        axes.scatter(
            points[chosen, 0], points[chosen, 1], s=4, color=matplotlib.colormaps["tab10"](digit), label=str(digit)
        )
    if marker is not None:
        axes.scatter([marker[0]], [marker[1]], s=200, marker="x", color="black", linewidths=3, label="query")
    axes.set_title(title)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(markerscale=3, fontsize="small", ncol=2, loc="best")
    return _png(figure)


def _figure(size: tuple[float, float]) -> tuple[Figure, Axes]:
    figure = Figure(figsize=size, dpi=100)
    return figure, figure.subplots()


def _png(figure: Figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")  # tick labels of any length stay inside
    return buffer.getvalue()

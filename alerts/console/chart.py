"""`/chart`: an account's margin-ratio history against its alert thresholds, as PNG.

Matplotlib's object API on the Agg canvas (never pyplot): no global figure state and
no display, so a chart can be drawn in a worker thread while the daemon's loop keeps
evaluating marks.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monitor.config import LevelThresholds, Thresholds
from monitor.engine.levels import Level

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Points = list[tuple[float, float]]
"""[(unix time, margin ratio)], oldest first."""

LINES = ((Level.WARN, "#e6a700"), (Level.CRITICAL, "#d62728"), (Level.IMMINENT, "#7f0000"))
"""Each threshold line's colour, by the level it sets (its `LevelThresholds` field)."""


def series_from(rows: Iterable[tuple[float, str, float | None]]) -> dict[str, Points]:
    """(time, target, margin ratio) rows -> plottable series.

    Cross positions are left out: their ratio is their pool's, so they would only redraw
    the pool's line. Unknown and infinite ratios are left out too (gaps, not spikes).
    """
    series: dict[str, Points] = {}
    for at, target, ratio in sorted(rows):
        if ratio is None or not math.isfinite(ratio) or _is_cross_position(target):
            continue
        series.setdefault(target, []).append((at, ratio))
    return series


def _is_cross_position(target: str) -> bool:
    return not target.startswith("pool ") and " cross" in target


def _isolated(target: str) -> bool:
    return " isolated" in target


def render_chart(title: str, series: Mapping[str, Points], thresholds: Thresholds) -> bytes:
    """PNG bytes, 800x450: legible on a phone without zooming. The ratio history of each
    target, with the thresholds of the modes it shows."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    figure, axes = _canvas()
    top = _plot(axes, {t: [(datetime.fromtimestamp(at, UTC), r) for at, r in points]
                       for t, points in series.items()})  # fmt: skip
    top = max(top, _thresholds(axes, series, thresholds))
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes.set_ylim(0, min(1.5, top * 1.08))
    return _png(figure, axes, title, xlabel="UTC")


def render_stress_chart(title: str, curves: Mapping[str, Points], thresholds: Thresholds) -> bytes:
    """Margin ratio against a uniform market move (`/stress`): [(move, ratio)] per pool
    and isolated position, with the alert thresholds; PNG, 800x450 like `/chart`."""
    figure, axes = _canvas()
    top = _plot(axes, curves)
    _thresholds(axes, curves, thresholds)
    axes.axhline(1.0, color="black", linewidth=1.2, label="liquidation 100%")
    axes.axvline(0.0, color="grey", linewidth=0.8)
    axes.set_ylim(0, min(1.5, max(top, 1.0) * 1.08))
    axes.xaxis.set_major_formatter(lambda value, _: f"{value * 100:+.0f}%")
    return _png(figure, axes, title, xlabel="every price moves by")


def _canvas() -> tuple[Figure, Axes]:
    """A figure and its axes. Matplotlib is imported here, on the first chart: it costs
    the daemon 0.45 s and about 40 MiB at start for commands most days never see."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _plot(axes: Axes, lines: Mapping[str, Sequence[tuple[Any, float]]]) -> float:
    """One line per target; the highest ratio drawn."""
    top = 0.0
    for target, points in sorted(lines.items()):
        ratios = [ratio for _, ratio in points]
        top = max(top, *ratios)
        axes.plot([x for x, _ in points], ratios, linewidth=1.6, label=target)
    return top


def _thresholds(axes: Axes, targets: Iterable[str], thresholds: Thresholds) -> float:
    """The cross thresholds, and the isolated ones (dashed) where an isolated target is
    drawn; the highest threshold drawn."""
    modes = {"cross": thresholds.cross}
    if any(_isolated(target) for target in targets):
        modes["isolated"] = thresholds.isolated
    return max(
        _threshold_lines(axes, mode, limits, dashed=mode == "isolated")
        for mode, limits in modes.items()
    )


def _png(figure: Figure, axes: Axes, title: str, *, xlabel: str) -> bytes:
    axes.yaxis.set_major_formatter(lambda value, _: f"{value * 100:.0f}%")
    axes.set_ylabel("margin ratio (1 = liquidation)")
    axes.set_xlabel(xlabel)
    axes.set_title(title, fontsize=11)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best", framealpha=0.8)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def _threshold_lines(axes: Axes, mode: str, limits: LevelThresholds, dashed: bool) -> float:
    for level, colour in LINES:
        value = getattr(limits, level)
        axes.axhline(
            value, color=colour, linewidth=1, linestyle="--" if dashed else ":",
            label=f"{level} {mode} {value * 100:.0f}%",
        )  # fmt: skip
    return limits.imminent

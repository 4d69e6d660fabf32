"""Bar charts drawn on the server as SVG geometry, for the templates to write out.

Why no chart library: a day-by-day bar chart is a few rectangles. Computing them here
needs no JavaScript, no pinned third-party file and no ``style`` attribute (the CSP forbids
inline styles; SVG geometry is plain attributes), prints and screenshots the same, and can
be tested as a function. Each bar carries a ``<title>`` (its value on hover and for screen
readers), and every chart on a page sits next to a table of the same figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

#: The drawing's coordinate system (the SVG scales to its box with viewBox).
WIDTH, HEIGHT = 600, 160
#: Room at the bottom for the date labels, at the top for the maximum's label.
BOTTOM, TOP = 20, 14
GAP = 2


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    #: ``2026-12-05: 1.5 min`` (the bar's tooltip).
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    text: str
    anchor: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    baseline: float
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...]
    #: The largest value, written at the top left (the scale).
    peak: str
    empty: bool


def days(start: date, end: date) -> list[date]:
    """Every day from ``start`` to ``end``, both included."""
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def bar_chart(title: str, points: Sequence[tuple[date, int]],
              describe: Callable[[int], str]) -> Chart:
    """One bar per point (a day and an integer value), scaled to the largest value.

    ``describe`` writes a value for people (``$0.35``, ``1.5 min``). A chart whose values
    are all zero has no bars and says ``empty``, so the template can say what to do instead.
    """
    peak = max((value for _, value in points), default=0)
    plot_height = HEIGHT - BOTTOM - TOP
    slot = WIDTH / max(len(points), 1)
    bars = []
    for index, (day, value) in enumerate(points):
        height = plot_height * value / peak if peak else 0.0
        if value and height < 1:
            height = 1.0  # a non-zero day stays visible
        bars.append(Bar(x=round(index * slot + GAP / 2, 2),
                        y=round(HEIGHT - BOTTOM - height, 2),
                        width=round(max(slot - GAP, 1), 2), height=round(height, 2),
                        title=f"{day.isoformat()}: {describe(value)}"))
    labels: list[Label] = []
    if points:
        labels.append(Label(0, points[0][0].isoformat(), "start"))
        if len(points) > 2:
            middle = len(points) // 2
            labels.append(Label(round((middle + 0.5) * slot, 2),
                                points[middle][0].isoformat(), "middle"))
        labels.append(Label(WIDTH, points[-1][0].isoformat(), "end"))
    return Chart(title=title, width=WIDTH, height=HEIGHT, baseline=HEIGHT - BOTTOM,
                 bars=tuple(bars), labels=tuple(labels), peak=describe(peak),
                 empty=peak == 0)

"""The server-drawn charts and the dashboard's number formats (pure functions)."""

from __future__ import annotations

from datetime import date

from app.dashboard import charts, formatting


def test_bars_scale_to_the_peak_and_keep_small_days_visible() -> None:
    days = charts.days(date(2026, 12, 1), date(2026, 12, 3))
    chart = charts.bar_chart("Spend", list(zip(days, [0, 1, 1000], strict=True)), str)
    plot = charts.HEIGHT - charts.BOTTOM - charts.TOP
    assert [bar.height for bar in chart.bars] == [0.0, 1.0, plot]
    assert all(bar.y + bar.height == chart.baseline for bar in chart.bars)
    assert chart.bars[2].title == "2026-12-03: 1000" and chart.peak == "1000"
    assert [label.text for label in chart.labels] == ["2026-12-01", "2026-12-02", "2026-12-03"]
    assert not chart.empty


def test_a_chart_of_zeros_is_empty() -> None:
    days = charts.days(date(2026, 11, 6), date(2026, 12, 5))
    chart = charts.bar_chart("Minutes", [(day, 0) for day in days], str)
    assert len(days) == 30 and chart.empty and all(bar.height == 0 for bar in chart.bars)


def test_formats() -> None:
    assert formatting.usd(12_500_000) == "$12.50"
    assert formatting.usd(14_250) == "$0.01425"
    assert formatting.usd(-1_250_000) == "-$1.25"
    assert formatting.duration(11.0) == "0:11" and formatting.duration(3725) == "1:02:05"
    assert formatting.timestamp(65.24) == "1:05.2"
    assert formatting.minutes(90_000) == "1.5"
    speakers = ["SPEAKER 1", "SPEAKER 2"]
    assert formatting.speaker_class("SPEAKER 2", speakers) == "speaker-2"
    assert formatting.speaker_class(None, speakers) == "speaker-none"

"""The Grafana dashboard charts metrics that exist: every ``voxhook_*`` name its queries use
is one the service defines (a renamed metric would leave a panel silently empty), and every
metric the service defines is charted."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import Counter, Histogram

from app.observability import metrics

DASHBOARD = (Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
             / "voxhook.json")
#: Read at scrape time by the API (not in the default registry).
SCRAPE_TIME = {"voxhook_queue_depth", "voxhook_queue_oldest_age_seconds", "voxhook_model_state"}


def defined() -> set[str]:
    """Every series name the service's metrics produce."""
    names = set(SCRAPE_TIME)
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(value._name + "_total")
        elif isinstance(value, Histogram):
            names.update(value._name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def test_every_query_uses_defined_metrics_and_every_metric_is_charted() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"voxhook_[a-z_]+", target["expr"])}
    known = defined()
    assert used - known == set(), used - known
    families = {re.sub(r"_(bucket|count|sum)$", "", n) for n in known}
    charted = {re.sub(r"_(bucket|count|sum)$", "", n) for n in used}
    assert families - charted == set()

"""Every environment variable the settings read is explained by ``voxhook config``."""

from __future__ import annotations

import re

from app.ops.environment import ENVIRONMENT
from tests.support.paths import REPO


def test_every_variable_the_settings_read_is_documented() -> None:
    source = (REPO / "app" / "config.py").read_text()
    read = set(re.findall(r'"(VOXHOOK_[A-Z0-9_]*[A-Z0-9])"', source))
    assert read, "the pattern no longer finds the variables config.py reads"
    assert sorted(read - set(ENVIRONMENT)) == []

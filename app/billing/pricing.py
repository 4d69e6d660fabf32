"""Prices and costs, exact to the micro-dollar (1e-6 USD) and never a float.

Audio is billed per started second: a 119.2 s file is billed as 120 s. Each surface has its
price: the Quickstart surface 0.20 USD an hour; the v1 surface its pipeline's price a minute.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

MICRO_USD_PER_USD = 1_000_000
#: The Quickstart surface's price: 0.20 USD per hour of audio.
QUICKSTART_MICRO_USD_PER_HOUR = 200_000


def billable_seconds(duration_s: float) -> int:
    """Whole seconds billed for audio of ``duration_s`` seconds (rounded up, at ms precision).

    Rounding to milliseconds first keeps decoder noise (11.000000001 s) from adding a second.
    """
    return math.ceil(round(max(duration_s, 0.0), 3))


def quickstart_cost_micro_usd(duration_s: float) -> int:
    """The Quickstart cost: 120 s -> 6667 micro-dollars (0.6667 cents)."""
    return _round(Decimal(billable_seconds(duration_s) * QUICKSTART_MICRO_USD_PER_HOUR) / 3600)


def per_minute_cost_micro_usd(duration_s: float, price_per_minute_usd: Decimal) -> int:
    """The v1 cost: the pipeline's price a minute, prorated per second."""
    micro_per_minute = price_per_minute_usd * MICRO_USD_PER_USD
    return _round(micro_per_minute * billable_seconds(duration_s) / 60)


def per_item_cost_micro_usd(count: int, price_usd: Decimal) -> int:
    """``count`` items at ``price_usd`` each (AI analyses): 3 x 0.0015 USD -> 4500."""
    return _round(price_usd * MICRO_USD_PER_USD * max(count, 0))


def micro_usd_to_cents(micro_usd: int) -> Decimal:
    """6667 -> Decimal('0.6667'): the Quickstart surface's ``cost_cents``."""
    return Decimal(micro_usd) / 10_000


def micro_usd_to_usd(micro_usd: int) -> Decimal:
    """6667 -> Decimal('0.006667')."""
    return (Decimal(micro_usd) / MICRO_USD_PER_USD).quantize(Decimal("0.000001"))


def _round(amount: Decimal) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))

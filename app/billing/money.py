"""Money at the edges: exact decimal dollars to and from integer micro-dollars (1e-6 USD),
and the errors about money that callers (CLI, admin API, worker) report to a person.

Amounts are integers everywhere inside; dollars appear only as exact decimal strings, never
floats (:func:`parse_usd`, :func:`format_usd`). The wallet and its audit both use these, so
they live apart from either.

Exceptions::

    WalletError
    ├── UnknownAccount          (also LookupError) no such account
    ├── InvalidAmount           (also ValueError) malformed, negative, too precise, too large,
    │                           or a top-up below the minimum
    ├── InsufficientFunds       available < required (reserve, or an adjustment below zero)
    └── WalletContention        too many concurrent changes in a row (should never happen)
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass
from app.billing.pricing import MICRO_USD_PER_USD

#: The largest amount of one operation (1,000,000 USD): a typo, not a payment, beyond that.
MAX_AMOUNT_MICRO_USD = 1_000_000 * MICRO_USD_PER_USD


class WalletError(Exception):
    """Something about money that the caller (CLI, admin API, worker) reports to a person."""


class UnknownAccount(WalletError, LookupError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"no account {account_id!r}; `voxhook accounts list` shows them")
        self.account_id = account_id


class InvalidAmount(WalletError, ValueError):
    """An amount that cannot be used; the message names it and says what is accepted."""


class InsufficientFunds(WalletError):
    """Not enough money: ``available_micro_usd`` is there, ``required_micro_usd`` is needed."""

    def __init__(self, available_micro_usd: int, required_micro_usd: int,
                 message: str | None = None) -> None:
        super().__init__(message or (
            f"The balance is too low: {format_usd(available_micro_usd)} USD available, "
            f"{format_usd(required_micro_usd)} USD needed."))
        self.available_micro_usd = available_micro_usd
        self.required_micro_usd = required_micro_usd


class WalletContention(WalletError, RuntimeError):
    """An operation lost the race against concurrent changes :data:`MAX_ATTEMPTS` times."""


def parse_usd(text: str, *, what: str = "usd", allow_negative: bool = False) -> int:
    """``"5.00"`` -> 5_000_000 micro-dollars, exactly, or :class:`InvalidAmount`.

    At most 6 decimal places that are not zero (the smallest unit is 0.000001 USD); never via
    a float. ``what`` names the field or option in the message.
    """
    example = "e.g. \"5.00\"" if not allow_negative else "e.g. \"5.00\" or \"-1.25\""
    if not isinstance(text, str):
        raise InvalidAmount(f"{what} must be an amount in US dollars written as a string, "
                            f"{example}, not {text!r}")
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidAmount(f"{what} must be an amount in US dollars, {example}, "
                            f"not {text!r}") from None
    if not amount.is_finite():
        raise InvalidAmount(f"{what} must be a finite amount in US dollars, {example}")
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) + exponent > 15:  # >= 1e15 USD: refuse before building a huge integer
        raise InvalidAmount(f"{what} is too large: at most {format_usd(MAX_AMOUNT_MICRO_USD)}")
    coefficient = int("".join(map(str, digits)))
    shift = exponent + 6
    if shift >= 0:
        micro = coefficient * 10**shift
    else:
        micro, rest = divmod(coefficient, 10**-shift)
        if rest:
            raise InvalidAmount(f"{what} has more than 6 decimal places ({text.strip()}); the "
                                "smallest unit is 0.000001 USD")
    if sign and micro:
        if not allow_negative:
            raise InvalidAmount(f"{what} must not be negative ({text.strip()})")
        micro = -micro
    if abs(micro) > MAX_AMOUNT_MICRO_USD:
        raise InvalidAmount(f"{what} is too large: at most {format_usd(MAX_AMOUNT_MICRO_USD)}")
    return micro


def format_usd(micro_usd: int) -> str:
    """5_000_000 -> ``"5.00"``, 6667 -> ``"0.006667"``: exact, at least two decimals."""
    whole, fraction = divmod(abs(micro_usd), MICRO_USD_PER_USD)
    decimals = f"{fraction:06d}".rstrip("0").ljust(2, "0")
    return f"{'-' if micro_usd < 0 else ''}{whole}.{decimals}"


def check_amount(amount: int, what: str, *, minimum: int = 0) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidAmount(f"{what} must be a whole number of micro-dollars, not {amount!r}")
    if amount < minimum:
        raise InvalidAmount(f"{what} must be at least {format_usd(minimum)} USD, "
                            f"not {format_usd(amount)} USD")
    if amount > MAX_AMOUNT_MICRO_USD:
        raise InvalidAmount(f"{what} is too large: at most {format_usd(MAX_AMOUNT_MICRO_USD)}"
                            " USD")

"""Money arithmetic (CNY). ``Decimal`` only; rounding is half-up to the fen,
done here and nowhere else."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN = Decimal("0.01")
ZERO = Decimal("0.00")


def round_fen(value: Decimal) -> Decimal:
    """Round half-up to the fen: the one rounding point of the platform."""
    if isinstance(value, float):
        raise TypeError("money must be Decimal, not float")
    return Decimal(value).quantize(FEN, rounding=ROUND_HALF_UP)


def parse_money(text: str | int | Decimal) -> Decimal:
    """Parse a money amount as written by a person or a client.

    Accepts at most two decimals; refuses floats' binary noise, NaN and
    infinities. Raises ``ValueError`` with an English message id.
    """
    if isinstance(text, float):
        text = repr(text)
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        raise ValueError("Not a valid amount of money.") from None
    if not value.is_finite():
        raise ValueError("Not a valid amount of money.")
    # The size first: quantizing "1e30" to the fen exceeds the decimal
    # context's precision (InvalidOperation, a 500 found by fuzzing).
    if abs(value) >= Decimal("1e12"):
        raise ValueError("The amount is too large.")
    if value != value.quantize(FEN, rounding=ROUND_HALF_UP):
        raise ValueError("An amount of money has at most two decimals.")
    return value.quantize(FEN)


def format_money(value: Decimal) -> str:
    return f"{round_fen(value):.2f}"

"""Handler inputs of the Wallet object; each checks its ranges before the invocation is accepted."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from objects import TerminalError

MAX_AMOUNT = 100_000_000  # cents; override with settings.WALLET_MAX_AMOUNT
MAX_TX_ID = 300
MAX_HISTORY_PAGE = 100


def max_amount() -> int:
    return int(getattr(settings, "WALLET_MAX_AMOUNT", MAX_AMOUNT))


def _check_amount(amount: int) -> None:
    limit = max_amount()
    if not 1 <= amount <= limit:
        raise TerminalError(f"amount: must be a whole number of cents from 1 to {limit}, got {amount}.", 400)


def _check_tx_id(tx_id: str) -> None:
    if not 1 <= len(tx_id.strip()) <= MAX_TX_ID or len(tx_id) > MAX_TX_ID:
        raise TerminalError(f"tx_id: must be 1 to {MAX_TX_ID} characters and not blank.", 400)


@dataclass
class Movement:
    """`deposit` and `withdraw`: an amount in cents and the caller's transaction id (its idempotency key)."""

    amount: int
    tx_id: str

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        _check_tx_id(self.tx_id)


@dataclass
class Transfer:
    """`transfer`: move `amount` cents to the wallet of user `to`."""

    to: str
    amount: int
    tx_id: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.to) <= 150:
            raise TerminalError("to: must be a username (1 to 150 characters).", 400)
        _check_amount(self.amount)
        _check_tx_id(self.tx_id)


@dataclass
class Receipt:
    """`receive` (internal, called by the sender's `transfer`): credit `amount` from `sender`."""

    sender: str
    amount: int
    tx_id: str

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        _check_tx_id(self.tx_id)


@dataclass
class TopUp:
    """`top_up` (internal, called by the shop's demo top-up): add `amount` cents, at most `daily_cap` a day."""

    amount: int
    tx_id: str
    daily_cap: int

    def __post_init__(self) -> None:
        _check_amount(self.amount)
        _check_tx_id(self.tx_id)
        if not 0 <= self.daily_cap <= max_amount():
            raise TerminalError(f"daily_cap: must be from 0 to {max_amount()} cents, got {self.daily_cap}.", 400)


@dataclass
class HistoryQuery:
    """`history`: up to `limit` entries (1-100), newest first, older than cursor `before` when given."""

    limit: int = 20
    before: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_HISTORY_PAGE:
            raise TerminalError(f"limit: must be from 1 to {MAX_HISTORY_PAGE}, got {self.limit}.", 400)
        if self.before is not None and self.before < 0:
            raise TerminalError(f"before: must be a cursor from a previous page's 'next', got {self.before}.", 400)

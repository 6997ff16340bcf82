"""A wallet's ledger in its object state: balance, paged history, and the tx_id memory for idempotency.

State entries of one `Wallet` key:
- ``balance``: int cents.
- ``count``: how many history entries exist; entry ``n`` (0-based, oldest first) is in ``page:<n // PAGE_SIZE>``.
- ``page:<p>``: a list of up to PAGE_SIZE entries. Paging keeps each write small: a movement rewrites only
  the newest page, not the whole history.
- ``tx``: ``{tx_id: n}`` for the last TX_MEMORY transactions, so a repeated tx_id is answered from its entry.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from objects import ObjectContext, SharedObjectContext, TerminalError

PAGE_SIZE = 50
TX_MEMORY = 1000


def _page_name(n: int) -> str:
    return f"page:{n // PAGE_SIZE}"


def ledger_balance(ctx: SharedObjectContext) -> int:
    return int(ctx.get("balance", 0))


def ledger_entry(ctx: SharedObjectContext, n: int) -> dict[str, Any]:
    return ctx.get(_page_name(n), [])[n % PAGE_SIZE]


def ledger_replay(
    ctx: SharedObjectContext, *, tx_id: str, kind: str, amount: int, counterparty: str | None = None
) -> dict[str, Any] | None:
    """The first result of a repeated tx_id, or None for a new one; 409 when it was used for another request."""
    n = ctx.get("tx", {}).get(tx_id)
    if n is None:
        return None
    entry = ledger_entry(ctx, n)
    if (entry["kind"], entry["amount"], entry["counterparty"]) != (kind, amount, counterparty):
        to = f" with {entry['counterparty']}" if entry["counterparty"] else ""
        raise TerminalError(
            f"tx_id {tx_id!r} was already used for a {entry['kind']} of {entry['amount']}{to}; "
            "use a new tx_id for a new transaction.",
            409,
        )
    return {"balance": entry["balance_after"]}


def ledger_record(
    ctx: ObjectContext, *, tx_id: str, kind: str, amount: int, balance_after: int, counterparty: str | None = None
) -> dict[str, Any]:
    """Set the balance and append one history entry; remember its tx_id. Returns the handler's result."""
    n = int(ctx.get("count", 0))
    entry = {
        "tx_id": tx_id,
        "kind": kind,
        "amount": amount,
        "balance_after": balance_after,
        "at": timezone.now().isoformat(),
        "counterparty": counterparty,
    }
    page = ctx.get(_page_name(n), [])
    page.append(entry)
    ctx.set(_page_name(n), page)
    ctx.set("count", n + 1)
    memory = ctx.get("tx", {})
    memory[tx_id] = n
    if len(memory) > TX_MEMORY:
        # JSON objects keep no order in PostgreSQL (jsonb): drop the oldest by entry number.
        for old in sorted(memory, key=memory.__getitem__)[: len(memory) - TX_MEMORY]:
            del memory[old]
    ctx.set("tx", memory)
    ctx.set("balance", balance_after)
    return {"balance": balance_after}


def ledger_page(ctx: SharedObjectContext, *, limit: int, before: int | None) -> dict[str, Any]:
    """Entries newest first. `before` is the cursor a previous page returned as `next` (an entry number)."""
    count = int(ctx.get("count", 0))
    end = count if before is None else min(before, count)
    start = max(end - limit, 0)
    entries: list[dict[str, Any]] = []
    pages: dict[str, list[dict[str, Any]]] = {}
    for n in range(end - 1, start - 1, -1):
        name = _page_name(n)
        if name not in pages:
            pages[name] = ctx.get(name, [])
        entries.append(pages[name][n % PAGE_SIZE])
    return {"entries": entries, "next": start if start > 0 else None}

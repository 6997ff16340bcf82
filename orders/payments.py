"""Payment confirmation (`SHOP_PAYMENT_CONFIRMATION`): checkout waits on an awakeable until a payment provider
answers. The demo provider keeps its pending payments in Redis, outside the shop's database, as another system
would; its page (shop/views.py) resolves or rejects the awakeable, as a provider's webhook would.
"""

from __future__ import annotations

import json
import time
import uuid
from functools import cache, partial
from typing import Any

import redis
from django.conf import settings

import objects
from cart.pricing import dollars
from objects import ObjectContext, TerminalError

KEEP_FOR = 7 * 24 * 3600  # seconds the demo provider remembers a payment
DECLINED = "The payment provider declined the payment."


def confirmation_on() -> bool:
    """Checkout waits for the payment provider only when SHOP_PAYMENT_CONFIRMATION is on (off by default)."""
    return bool(getattr(settings, "SHOP_PAYMENT_CONFIRMATION", False))


def new_order_id() -> str:
    return "ord_" + uuid.uuid4().hex


def payment_confirm(ctx: ObjectContext, *, order_id: str, user: str, lines: list[dict], total_cents: int) -> None:
    """Ask the provider to confirm the payment of `total_cents` for the order, and wait for its answer (the
    invocation is suspended meanwhile). Returns when confirmed; a decline is a 402 TerminalError in words.

    Call it before anything is reserved or charged: the handler runs again from the start after the answer,
    and only that last run's writes commit."""
    awakeable_id, answer = ctx.awakeable()
    ask = partial(
        payment_request,
        order_id=order_id,
        user=user,
        amount_cents=total_cents,
        items=[{"name": line["name"], "quantity": line["quantity"]} for line in lines],
        awakeable_id=awakeable_id,
    )
    ctx.run("ask the payment provider", ask)  # once, however often the handler runs again
    try:
        confirmed = answer.result()
    except TerminalError as exc:
        raise TerminalError(
            f"{exc.message} Your payment of {dollars(total_cents)} was not made: nothing was charged and your "
            "cart is as it was.",
            402,
        ) from None
    if not isinstance(confirmed, dict) or confirmed.get("amount_cents") != total_cents:
        raise TerminalError(
            f"The cart's total changed to {dollars(total_cents)} while its payment was being confirmed; "
            "nothing was charged. Check your cart and check out again.",
            409,
        )


# -- the demo payment provider: its pending payments, in Redis ---------------------------------------------


@cache
def _redis() -> Any:
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def _key(order_id: str) -> str:
    return f"shop:payment:{order_id}"


def _user_key(user: str) -> str:
    return f"shop:payments:{user}"


def payment_request(
    *, order_id: str, user: str, amount_cents: int, items: list[dict], awakeable_id: str
) -> dict[str, Any]:
    """The provider records a payment to confirm (what the shop would POST to a real provider)."""
    payment = {
        "order_id": order_id,
        "user": user,
        "amount_cents": amount_cents,
        "items": items,
        "awakeable_id": awakeable_id,
        "status": "pending",
        "at": time.time(),
    }
    pipe = _redis().pipeline()
    pipe.set(_key(order_id), json.dumps(payment), ex=KEEP_FOR)
    pipe.zadd(_user_key(user), {order_id: payment["at"]})
    pipe.expire(_user_key(user), KEEP_FOR)
    pipe.execute()
    return {"order_id": order_id}


def payment_get(*, order_id: str, user: str) -> dict[str, Any] | None:
    """The payment of `order_id` if `user` is its payer, else None."""
    text = _redis().get(_key(order_id))
    payment = json.loads(text) if text else None
    return payment if payment and payment["user"] == user else None


def payments_pending(*, user: str, since: float = 0.0) -> list[dict[str, Any]]:
    """The payments `user` has not answered yet (asked for at `since`, a Unix time, or later), oldest first."""
    ids = _redis().zrangebyscore(_user_key(user), since, "+inf")
    found = [payment_get(order_id=order_id, user=user) for order_id in ids]
    return [payment for payment in found if payment and payment["status"] == "pending"]


def payment_answer(*, order_id: str, user: str, confirm: bool) -> str:
    """Confirm or decline the payment (resolve or reject the waiting checkout's awakeable), once. Returns what
    the provider's page says; an unknown payment, or another user's, is LookupError."""
    payment = payment_get(order_id=order_id, user=user)
    if payment is None:
        raise LookupError(order_id)
    if payment["status"] != "pending":
        return f"This payment was already {payment['status']}."
    try:
        if confirm:
            objects.resolve_awakeable(payment["awakeable_id"], {"amount_cents": payment["amount_cents"]})
        else:
            objects.reject_awakeable(payment["awakeable_id"], DECLINED)
        status = "confirmed" if confirm else "declined"
        said = f"Payment of {dollars(payment['amount_cents'])} {status}. You can go back to the shop."
    except objects.Conflict:
        status, said = "answered", "This payment was already answered."
    except objects.NotFound:
        status, said = "withdrawn", "The shop no longer waits for this payment; nothing was charged."
    payment["status"] = status
    pipe = _redis().pipeline()
    pipe.set(_key(order_id), json.dumps(payment), ex=KEEP_FOR)
    pipe.zrem(_user_key(user), order_id)
    pipe.execute()
    return said

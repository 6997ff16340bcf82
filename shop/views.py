"""Views of the shop. Thin: validate the form, call one object handler on request.user's own key, render.

Every view uses the signed-in user's own key (or the session's anonymous cart), never a key from the
request, so editing URLs or forms cannot reach another shopper's cart, orders or wallet. Objects are
called outside any transaction (ATOMIC_REQUESTS is off); POSTs redirect (POST-redirect-GET), and the cart
endpoints answer JSON when the request accepts it (the page's script updates in place).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

import objects
from cart.limits import MAX_QUANTITY
from cart.services import cart_key_existing, cart_key_for
from catalog.selectors import products_by_sku
from objects import ObjectsError
from orders import payments

from . import pending, selectors
from .forms import (
    TOP_UP_AMOUNTS,
    AddToCartForm,
    CheckoutForm,
    PaymentAnswerForm,
    QuantityForm,
    SkuForm,
    TopUpForm,
    form_error,
    new_token,
)
from .templatetags.shop_tags import money

PAYMENT_WAITING = "Your order is waiting for its payment confirmation; this page shows the outcome as soon as it comes."


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    if "cart" not in context:
        try:
            context["cart"] = selectors.cart_get(key=cart_key_existing(request=request))
        except ObjectsError:
            context["cart"] = dict(selectors.EMPTY_CART)
    return render(request, template, context, status=status)


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on pages without an icon link (the admin's, the API's): the shop's."""
    return redirect(static("shop/favicon.svg"), permanent=True)


@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    return _page(request, "shop/catalog.html", {"rows": selectors.catalog_with_stock()})


@require_GET
def cart_page(request: HttpRequest) -> HttpResponse:
    return _page(request, "shop/cart.html", _cart_context(request))


def _cart_context(request: HttpRequest) -> dict[str, Any]:
    context: dict[str, Any] = {"checkout_token": new_token()}
    if request.user.is_authenticated:
        try:
            context["balance"] = objects.call("Wallet", request.user.get_username(), "balance")["balance"]
        except (ObjectsError, KeyError, TypeError):
            context["balance"] = None
    try:
        context["cart"] = selectors.cart_get(key=cart_key_existing(request=request))
    except ObjectsError as exc:  # the page says why (a cart whose stored state cannot be read, a paused key...)
        context["cart"], context["cart_error"] = dict(selectors.EMPTY_CART), pending.shopper_message(exc)
    context.update(_cart_lines(context["cart"]))
    return context


def _cart_lines(cart: dict[str, Any]) -> dict[str, Any]:
    """The cart's lines with their stock now: the quantity input's max, and a warning where a line asks for
    more than is left (checkout would refuse it)."""
    stock = selectors.stock_levels(skus=[line["sku"] for line in cart.get("lines") or []])
    warnings = selectors.cart_shortages(cart=cart, stock=stock)
    lines = []
    for line in cart.get("lines") or []:
        available = stock.get(line["sku"])
        top = MAX_QUANTITY if available is None else max(min(available, MAX_QUANTITY), 0)
        lines.append({**line, "max_quantity": top, "warning": warnings.get(line["sku"], "")})
    return {"lines": lines, "stock_warnings": list(warnings.values())}


def _stock_refusal(request: HttpRequest, handler: str, data: dict[str, Any]) -> str | None:
    """The shop sells no more than the stock: why this add or update asks for more than is left, else None.
    The Inventory object is the source (a shared read); checkout checks again under the stock's lock."""
    if handler not in ("add_item", "update_quantity") or data["quantity"] == 0:
        return None
    lines = selectors.cart_get(key=cart_key_existing(request=request)).get("lines") or []
    line = next((line for line in lines if line["sku"] == data["sku"]), None)
    product = products_by_sku(skus=[data["sku"]]).get(data["sku"])
    if product is None:
        return None  # the handler says what is wrong with the SKU
    in_cart = line["quantity"] if line and handler == "add_item" else 0
    return selectors.stock_refusal(
        name=product.name,
        available=selectors.stock_available(sku=data["sku"]),
        in_cart=in_cart,
        wanted=in_cart + data["quantity"],
    )


def _cart_change(request: HttpRequest, form_class: type, handler: str, done: str) -> HttpResponse:
    form = form_class(request.POST)
    if not form.is_valid():
        return _answer(request, error=form_error(form), status=400)
    arg = dict(form.cleaned_data)
    after = {"then": "cart", "done": done, "sku": arg["sku"], "next": request.POST.get("next", "")}
    try:
        refusal = _stock_refusal(request, handler, form.cleaned_data)
        if refusal:
            return _answer(request, error=refusal, status=409)
        result = pending.cart_call(request, key=cart_key_for(request=request), handler=handler, arg=arg, after=after)
    except pending.Waiting as waiting:
        return _waiting(request, waiting)
    except ObjectsError as exc:
        return _answer(request, error=pending.shopper_message(exc), status=exc.status_code)
    return _cart_changed_answer(request, result, after)


def _cart_changed_answer(request: HttpRequest, result: dict[str, Any], after: dict[str, Any]) -> HttpResponse:
    name = next((line["name"] for line in result["lines"] if line["sku"] == after["sku"]), None)
    if name is None:
        product = products_by_sku(skus=[after["sku"]]).get(after["sku"])
        name = product.name if product else "the item"
    return _answer(request, cart=result, message=after["done"].format(name=name), target=after.get("next", ""))


def _waiting(request: HttpRequest, waiting: pending.Waiting) -> HttpResponse:
    """The call did not finish within SHOP_CALL_TIMEOUT, or the cart is paused: say so. The script polls the
    pending URL; without it, the pending page reloads itself until the result is there."""
    url = reverse("shop:pending", args=[waiting.handle]) if waiting.handle else ""
    if _wants_json(request):
        return JsonResponse({"pending": url, "message": waiting.message}, status=202 if url else 503)
    if not url:
        messages.error(request, waiting.message)
        return redirect("shop:cart")
    return redirect(url)


def _answer(
    request: HttpRequest,
    *,
    cart: dict | None = None,
    message: str = "",
    error: str = "",
    status: int = 200,
    target: str | None = None,
) -> HttpResponse:
    if _wants_json(request):
        if error:
            return JsonResponse({"message": error}, status=status)
        stock = selectors.stock_levels(skus=[line["sku"] for line in (cart or {}).get("lines") or []])
        return JsonResponse({"cart": cart, "message": message, "stock": stock})
    if error:
        messages.error(request, error)
    elif message:
        messages.success(request, message)
    target = request.POST.get("next", "") if target is None else target
    return redirect("shop:catalog" if target == "catalog" else "shop:cart")


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    return _cart_change(request, AddToCartForm, "add_item", "Added {name} to your cart.")


@require_POST
def cart_update(request: HttpRequest) -> HttpResponse:
    return _cart_change(request, QuantityForm, "update_quantity", "Updated {name}.")


@require_POST
def cart_remove(request: HttpRequest) -> HttpResponse:
    return _cart_change(request, SkuForm, "remove_item", "Removed {name}.")


@require_GET
def cart_json(request: HttpRequest) -> HttpResponse:
    """The priced cart and its lines' stock: what the page's script shows after a live update."""
    try:
        cart = selectors.cart_get(key=cart_key_existing(request=request))
    except ObjectsError as exc:
        return JsonResponse({"message": pending.shopper_message(exc)}, status=exc.status_code)
    stock = selectors.stock_levels(skus=[line["sku"] for line in cart.get("lines") or []])
    return JsonResponse({"cart": cart, "stock": stock})


@require_POST
def checkout(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        messages.info(request, "Sign in to check out; your cart comes with you.")
        return redirect(f"{reverse('login')}?next={reverse('shop:cart')}")
    form = CheckoutForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_error(form))
        return redirect("shop:cart")
    token, expected = form.cleaned_data["token"], form.cleaned_data["expected_total"]
    after = {"then": "checkout", "seen": expected}
    username = request.user.get_username()
    try:
        result = pending.cart_call(
            request,
            key=username,
            handler="checkout",
            arg=None if expected is None else {"expected_total_cents": expected},
            idempotency_key=f"checkout-{token}",
            after=after,
            principal=request.user,
            waits_for=_payment_asked(username, since=time.time()) if payments.confirmation_on() else None,
        )
    except pending.Waiting as waiting:
        return _waiting(request, waiting)
    except ObjectsError as exc:
        return _checkout_failed(request, exc, after)
    return _checked_out(request, result)


def _payment_asked(username: str, *, since: float) -> Callable[[], bool]:
    """Whether the checkout asked the payment provider (at `since` or later; clocks may differ a little): it
    waits for the answer, so the page need not wait for it any longer."""
    return lambda: bool(payments.payments_pending(user=username, since=since - 10))


def _payment_waited_for(request: HttpRequest, handle: str) -> dict[str, Any] | None:
    """The payment a pending checkout of this shopper waits for (the newest one not answered), else None."""
    if pending.pending_kind(request, handle) != "checkout" or not payments.confirmation_on():
        return None
    waiting = payments.payments_pending(user=request.user.get_username())
    return waiting[-1] if waiting else None


def _checked_out(request: HttpRequest, result: dict[str, Any]) -> HttpResponse:
    messages.success(request, f"Thank you! Order placed and paid ({money(result.get('order_total_cents'))}).")
    return redirect("shop:order_detail", order_id=result["order_id"])


def _checkout_failed(request: HttpRequest, exc: ObjectsError, after: dict[str, Any]) -> HttpResponse:
    if exc.status_code == 412 and after.get("seen") is not None:
        return _cart_changed(request, seen=after["seen"])
    messages.error(request, f"Checkout failed: {pending.shopper_message(exc)}")
    return redirect("shop:cart")


@require_GET
def pending_call(request: HttpRequest, handle: str) -> HttpResponse:
    """A call that outlived SHOP_CALL_TIMEOUT: wait a little more for its result, then answer as the first
    request would have, or say again that it is still working (or on hold)."""
    try:
        outcome = pending.resume(request, handle)
    except pending.Waiting as waiting:
        payment = _payment_waited_for(request, handle)
        if payment is not None:
            if _wants_json(request):
                return JsonResponse({"pending": request.path, "message": PAYMENT_WAITING}, status=202)
            return _page(request, "shop/payment_waiting.html", {"payment": payment})
        if _wants_json(request):
            return JsonResponse({"pending": request.path, "message": waiting.message}, status=202)
        return _page(request, "shop/pending.html", {"message": waiting.message}, status=200)
    if outcome is None:
        if _wants_json(request):
            return JsonResponse({"message": "That change is no longer pending; reload the page."}, status=404)
        return redirect("shop:cart")
    after, result, error = outcome
    if after["then"] == "checkout":
        return _checkout_failed(request, error, after) if error else _checked_out(request, result)
    if error:
        return _answer(request, error=pending.shopper_message(error), status=error.status_code, target=after["next"])
    return _cart_changed_answer(request, result, after)


def _cart_changed(request: HttpRequest, *, seen: int) -> HttpResponse:
    """The cart changed after the shopper saw it (another tab, the idle expiry): nothing was charged. The cart
    page again, with the new total to confirm (a new form token: the refused one stays refused)."""
    context = _cart_context(request)
    total = context["cart"]["total_cents"]
    messages.error(
        request,
        f"Your cart changed since you saw it: the total is now {money(total)}, not {money(seen)}. "
        "Nothing was charged. Check it and confirm to pay.",
    )
    context["confirm"] = True
    return _page(request, "shop/cart.html", context, status=409)


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    return _page(request, "shop/order_list.html", {"orders": selectors.order_list(username=request.user.username)})


@login_required
@require_GET
def order_detail(request: HttpRequest, order_id: str) -> HttpResponse:
    order = selectors.order_get(order_id=order_id, username=request.user.get_username())
    if order is None:
        raise Http404("No such order.")
    return _page(request, "shop/order_detail.html", {"order": order})


@login_required
@require_GET
def wallet(request: HttpRequest) -> HttpResponse:
    before = request.GET.get("before") or None
    try:
        data = selectors.wallet_get(username=request.user.get_username(), before=before)
    except ObjectsError as exc:
        messages.error(request, pending.shopper_message(exc))
        data = {"balance": None, "entries": [], "next": None}
    context = {"wallet": data, "top_up": top_up_on(), "top_up_token": new_token(), "amounts": TOP_UP_AMOUNTS}
    return _page(request, "shop/wallet.html", context)


def top_up_on() -> bool:
    """The demo top-up is off unless SHOP_DEMO_TOPUP is on (`make run` turns it on)."""
    return bool(getattr(settings, "SHOP_DEMO_TOPUP", False))


def top_up_daily_cents() -> int:
    return int(getattr(settings, "SHOP_DEMO_TOPUP_DAILY_CENTS", 10_000))


@login_required
@require_POST
def wallet_top_up(request: HttpRequest) -> HttpResponse:
    """Free money for trying the shop: off unless SHOP_DEMO_TOPUP is on (404), at most
    SHOP_DEMO_TOPUP_DAILY_CENTS per user and day (Wallet.top_up keeps the day's sum under the wallet's lock)."""
    if not top_up_on():
        raise Http404("The demo top-up is off.")
    form = TopUpForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_error(form))
        return redirect("shop:wallet")
    amount, token = form.cleaned_data["amount"], form.cleaned_data["token"]
    try:
        result = objects.call(
            "Wallet",
            request.user.get_username(),
            "top_up",
            {"amount": amount, "tx_id": f"topup-{token}", "daily_cap": top_up_daily_cents()},
            idempotency_key=f"topup-{token}",
        )
    except ObjectsError as exc:
        messages.error(request, pending.shopper_message(exc))
        return redirect("shop:wallet")
    messages.success(request, f"Added {money(amount)}. Your balance is {money(result['balance'])}.")
    return redirect("shop:wallet")


def _payment_on() -> None:
    if not payments.confirmation_on():
        raise Http404("Payment confirmation is off.")


@login_required
@require_GET
def payment_provider(request: HttpRequest) -> HttpResponse:
    """The demo payment provider (SHOP_PAYMENT_CONFIRMATION): the shopper's payments waiting for an answer, each
    with "Confirm payment" and "Decline". It stands in for a provider's own page and webhook."""
    _payment_on()
    back = _local_url(request, request.GET.get("next", ""))
    waiting = payments.payments_pending(user=request.user.get_username())
    return _page(request, "shop/payment_provider.html", {"payments": waiting, "next": back})


@login_required
@require_POST
def payment_provider_answer(request: HttpRequest, order_id: str) -> HttpResponse:
    """Confirm or decline one of the shopper's payments (resolve or reject the waiting checkout's awakeable), then
    back to the shop's page that follows the checkout, or to the provider's page with what happened."""
    _payment_on()
    form = PaymentAnswerForm(request.POST)
    if not form.is_valid():
        messages.error(request, form_error(form))
        return redirect("shop:payment_provider")
    try:
        said = payments.payment_answer(
            order_id=order_id, user=request.user.get_username(), confirm=form.cleaned_data["decision"] == "confirm"
        )
    except LookupError:
        raise Http404("No such payment.") from None
    back = _local_url(request, form.cleaned_data["next"])
    if back:
        return redirect(back)
    messages.success(request, said)
    return redirect("shop:payment_provider")


def _local_url(request: HttpRequest, url: str) -> str:
    """`url` when it is a path of this site, else "" (the provider sends the shopper back to the shop only)."""
    allowed = url.startswith("/") and url_has_allowed_host_and_scheme(url, {request.get_host()}, request.is_secure())
    return url if allowed else ""

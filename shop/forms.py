"""Forms of the shop: every POST is validated here before anything reaches an object."""

from __future__ import annotations

import uuid

from django import forms

from cart.limits import MAX_QUANTITY

TOKEN_RE = r"^[0-9a-f]{32}$"
TOP_UP_AMOUNTS = (1000, 2500, 5000)


def new_token() -> str:
    """A per-render form token: the idempotency key of the request the form makes."""
    return uuid.uuid4().hex


class SkuForm(forms.Form):
    sku = forms.CharField(max_length=40)


class AddToCartForm(SkuForm):
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY, initial=1)


class QuantityForm(SkuForm):
    quantity = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY)


class CheckoutForm(forms.Form):
    token = forms.RegexField(regex=TOKEN_RE, error_messages={"invalid": "The checkout form expired; try again."})
    expected_total = forms.IntegerField(min_value=0, max_value=10**12, required=False)  # the total shown, in cents


class TopUpForm(forms.Form):
    amount = forms.TypedChoiceField(coerce=int, choices=[(a, a) for a in TOP_UP_AMOUNTS])
    token = forms.RegexField(regex=TOKEN_RE, error_messages={"invalid": "The top-up form expired; try again."})


class PaymentAnswerForm(forms.Form):
    decision = forms.ChoiceField(choices=[("confirm", "Confirm payment"), ("decline", "Decline")])
    next = forms.CharField(max_length=200, required=False)


def form_error(form: forms.Form) -> str:
    """One readable sentence from a form's errors."""
    parts = []
    for field, errors in form.errors.items():
        label = "" if field == "__all__" else f"{field.replace('_', ' ').capitalize()}: "
        parts.append(label + " ".join(str(e) for e in errors))
    return " ".join(parts) or "Invalid form."

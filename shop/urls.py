"""URLs of the shop (mounted at /)."""

from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("cart/", views.cart_page, name="cart"),
    path("cart/add/", views.cart_add, name="cart_add"),
    path("cart/update/", views.cart_update, name="cart_update"),
    path("cart/remove/", views.cart_remove, name="cart_remove"),
    path("cart/json/", views.cart_json, name="cart_json"),
    path("checkout/", views.checkout, name="checkout"),
    path("pending/<str:handle>/", views.pending_call, name="pending"),
    path("orders/", views.order_list, name="order_list"),
    path("orders/<str:order_id>/", views.order_detail, name="order_detail"),
    path("wallet/", views.wallet, name="wallet"),
    path("wallet/top-up/", views.wallet_top_up, name="wallet_top_up"),
    path("payment-provider/", views.payment_provider, name="payment_provider"),
    path("payment-provider/<str:order_id>/", views.payment_provider_answer, name="payment_provider_answer"),
]

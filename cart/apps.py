"""App config of the cart: the ShoppingCart object and the sign-in merge of anonymous carts."""

from django.apps import AppConfig


class CartConfig(AppConfig):
    name = "cart"
    verbose_name = "Shopping cart"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from .signals import merge_anonymous_cart

        user_logged_in.connect(merge_anonymous_cart, dispatch_uid="cart.merge_anonymous_cart")

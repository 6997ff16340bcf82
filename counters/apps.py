"""App config of the counters app."""

from django.apps import AppConfig


class CountersConfig(AppConfig):
    verbose_name = "Counters and tenants"
    name = "counters"
    default_auto_field = "django.db.models.BigAutoField"

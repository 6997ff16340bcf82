"""App config: autodiscovers every installed app's virtual_objects.py at start-up and registers the system
checks (objects/checks.py)."""

from django.apps import AppConfig


class ObjectsConfig(AppConfig):
    name = "objects"
    verbose_name = "Virtual objects"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks as django_checks

        from . import checks
        from .registry import autodiscover

        for check in checks.ALL:
            django_checks.register(check, "objects")
        autodiscover()

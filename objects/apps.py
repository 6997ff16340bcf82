"""App config: autodiscovers every installed app's virtual_objects.py at start-up."""

from django.apps import AppConfig


class ObjectsConfig(AppConfig):
    name = "objects"
    verbose_name = "Virtual objects"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .registry import autodiscover

        autodiscover()

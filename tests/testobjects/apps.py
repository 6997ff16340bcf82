from django.apps import AppConfig


class TestObjectsConfig(AppConfig):
    name = "tests.testobjects"
    label = "testobjects"
    default_auto_field = "django.db.models.BigAutoField"

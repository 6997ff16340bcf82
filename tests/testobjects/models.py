"""A side table that test handlers write in their own transaction, to observe execution."""

from django.db import models


class Event(models.Model):
    key = models.CharField(max_length=255)
    kind = models.CharField(max_length=20)
    at = models.FloatField()
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["id"]

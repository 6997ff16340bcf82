"""Tenants: the owners of counters. A user may touch the counters of the tenants they are a member of."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Tenant(models.Model):
    """An organisation whose counters are keyed "<slug>/<name>"."""

    slug = models.SlugField(max_length=100, unique=True, help_text='The first part of a counter key: "<slug>/<name>".')
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="tenants",
        help_text="Users who may read and change this tenant's counters.",
    )

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

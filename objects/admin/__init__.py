"""The Django admin for virtual objects: instances (state, inbox, history), invocations, the overview page."""

from django.contrib import admin

from .instances import InstanceAdmin
from .invocations import InvocationAdmin

# The admin index links to the overview page (the template only adds a box to the stock index).
if admin.site.index_template is None:
    admin.site.index_template = "admin/objects/index.html"

__all__ = ["InstanceAdmin", "InvocationAdmin"]

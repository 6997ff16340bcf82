"""Admin for tenants: create them, name them, choose their members."""

from django.contrib import admin

from .models import Tenant


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "member_count"]
    search_fields = ["slug", "name", "members__username"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["members"]

    @admin.display(description="members")
    def member_count(self, obj: Tenant) -> int:
        return obj.members.count()

"""Admin for object instances: one list for all types; the instance page with state, inbox and history."""

from __future__ import annotations

from datetime import UTC
from typing import Any
from urllib.parse import quote

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone

from ..models import Instance, StateChange
from ..registry import all_objects
from ..selectors import (
    instance_entries,
    instance_history,
    instance_history_versions,
    instance_inbox,
    instance_list_annotated,
    instance_recent_invocations,
    instance_timers,
    type_overview,
)
from ..services import instance_pause, instance_resume
from . import editing
from .diffing import DiffRow, value_diff
from .display import age_text, json_html
from .invocations import status_badge
from .navigation import back, next_url

HISTORY_PER_PAGE = 20
OVERVIEW_REFRESH_SECONDS = 5  # the overview's counts are read again this often while its tab is visible


def watch_url(instance: Instance) -> str:
    """The key's committed state as Server-Sent Events (the ingress's watch, which lets staff who may view instances
    watch any key): the instance page follows it (objects/static/objects/admin_live.js). "" without the ingress."""
    try:
        head = reverse("objects:objects-ingress", kwargs={"rest": ""})
    except NoReverseMatch:  # the app's URLs are not included (check objects.E005)
        return ""
    return f"{head}{quote(instance.type_name, safe='')}/{quote(instance.key, safe='')}/watch"


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = (
        "type_name",
        "key",
        "entries_column",
        "size_column",
        "changed_at",
        "inbox_column",
        "paused",
        "paused_reason",
    )
    list_filter = ("type_name", "paused")
    search_fields = ("key",)
    search_help_text = "Keys containing the text; start with ^ for keys beginning with it (^user1)."
    fields = ("type_name", "key", "version", "paused", "paused_reason", "created_at", "changed_at")
    readonly_fields = fields
    actions = ["clear_all_state", "pause_keys", "resume_keys"]
    change_form_template = "admin/objects/instance/change_form.html"
    change_list_template = "admin/objects/instance/change_list.html"
    list_per_page = 50

    # Permissions: the "change" permission is the operator's; the form itself is never saved, because
    # every state change goes through a version-checked edit behind the key's lock.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request)

    def can_operate(self, request: HttpRequest) -> bool:
        return super().has_change_permission(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Instance]:
        return instance_list_annotated(super().get_queryset(request))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if term.startswith("^") and len(term) > 1:
            return queryset.filter(key__startswith=term[1:]), False
        if term:
            return queryset.filter(key__icontains=term), False
        return queryset, False

    @admin.display(description="entries", ordering="entry_count")
    def entries_column(self, obj: Instance) -> int:
        return obj.entry_count  # type: ignore[attr-defined]  # annotated in get_queryset

    @admin.display(description="state size (bytes)", ordering="state_size")
    def size_column(self, obj: Instance) -> int:
        return obj.state_size  # type: ignore[attr-defined]  # annotated in get_queryset

    @admin.display(description="inbox", ordering="inbox_depth")
    def inbox_column(self, obj: Instance) -> int:
        return obj.inbox_depth  # type: ignore[attr-defined]  # annotated in get_queryset

    # The instance page ----------------------------------------------------------------------------
    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        instance = self.get_object(request, unquote(object_id))
        if instance is not None and self.has_view_permission(request, instance):
            extra_context = {**(extra_context or {}), **self.panels(request, instance)}
        return super().change_view(request, object_id, form_url, extra_context)

    def panels(self, request: HttpRequest, instance: Instance) -> dict[str, Any]:
        entries = [(entry, json_html(entry.value)) for entry in instance_entries(instance=instance)]
        inbox = instance_inbox(instance=instance)
        recent = instance_recent_invocations(instance=instance)
        for invocation in [row.invocation for row in inbox] + recent:
            invocation.instance = instance  # the badge reads the pause from it: no query per row
            invocation.badge = status_badge(invocation)  # type: ignore[attr-defined]  # for the template
        return {
            "entries": entries,
            "inbox": inbox,
            "timers": instance_timers(instance=instance),
            "recent": recent,
            "history_page": self.history_page(request, instance),
            "can_operate": self.can_operate(request),
            "watch_url": watch_url(instance),
            "changelist_url": reverse("admin:objects_instance_changelist"),
            "invocations_url": reverse("admin:objects_invocation_changelist"),
        }

    def history_page(self, request: HttpRequest, instance: Instance) -> Page:
        """One page of the state history, HISTORY_PER_PAGE versions: (version, [(change, diff rows)])."""
        page = Paginator(instance_history_versions(instance=instance), HISTORY_PER_PAGE).get_page(
            request.GET.get("history")
        )
        versions = list(page.object_list)
        changes = instance_history(instance=instance, versions=versions, limit=10_000) if versions else []
        by_version: dict[int, list[tuple[Any, list[DiffRow]]]] = {version: [] for version in versions}
        for change in sorted(changes, key=lambda c: c.name):
            cleared = change.action == StateChange.Action.CLEAR
            diff = value_diff(change.old_value, change.new_value, change.name, cleared=cleared)
            by_version[change.version].append((change, diff))
        page.object_list = [(version, by_version[version]) for version in versions]
        return page

    def get_urls(self) -> list:
        def wrap(view):
            return self.admin_site.admin_view(view)

        return [
            path("overview/", wrap(self.overview_view), name="objects_overview"),
            path("<int:object_id>/state/edit/", wrap(self.entry_edit_view), name="objects_instance_entry_edit"),
            path("<int:object_id>/state/delete/", wrap(self.entry_delete_view), name="objects_instance_entry_delete"),
            path(
                "<int:object_id>/history/<int:change_id>/restore/",
                wrap(self.restore_view),
                name="objects_instance_restore",
            ),
        ] + super().get_urls()

    def operated_instance(self, request: HttpRequest, object_id: int) -> Instance:
        if not self.can_operate(request):
            raise PermissionDenied
        instance = self.get_object(request, str(object_id))
        if instance is None:
            raise Http404(f"No object instance with id {object_id}.")
        return instance

    def entry_edit_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return editing.entry_edit(self, request, self.operated_instance(request, object_id))

    def entry_delete_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        return editing.entry_delete(self, request, self.operated_instance(request, object_id))

    def restore_view(self, request: HttpRequest, object_id: int, change_id: int) -> HttpResponse:
        return editing.history_restore(self, request, self.operated_instance(request, object_id), change_id)

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied

        rows = type_overview(type_names=[obj.name for obj in all_objects()])
        for row in rows:
            row["oldest_waiting_text"] = age_text(row["oldest_waiting_age"])
        context = {
            **self.admin_site.each_context(request),
            "title": "Virtual objects overview",
            "opts": self.opts,
            "rows": rows,
            "as_of": timezone.now().astimezone(UTC),
            "refresh_seconds": OVERVIEW_REFRESH_SECONDS,
            "instances_url": reverse("admin:objects_instance_changelist"),
            "invocations_url": reverse("admin:objects_invocation_changelist"),
        }
        return TemplateResponse(request, "admin/objects/overview.html", context)

    # Actions on one or many instances --------------------------------------------------------------
    @admin.action(description="Clear all state of the selected instances", permissions=["change"])
    def clear_all_state(self, request: HttpRequest, queryset: QuerySet[Instance]) -> HttpResponse | None:
        return editing.clear_all(self, request, queryset)

    @admin.action(description="Pause the selected keys (their inboxes wait)", permissions=["change"])
    def pause_keys(self, request: HttpRequest, queryset: QuerySet[Instance]) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Pause keys",
                "opts": self.opts,
                "instances": list(queryset),
                "action": "pause_keys",
                "next": next_url(request),
            }
            return TemplateResponse(request, "admin/objects/instance/pause_confirmation.html", context)
        reason = request.POST.get("reason", "").strip()[:500]
        count = 0
        for instance in queryset:
            instance_pause(instance=instance, reason=reason)
            self.log_change(request, instance, f"Paused: {instance.paused_reason}")
            count += 1
        self.message_user(request, f"Paused {count} key(s): {reason or 'no reason given'}.", messages.SUCCESS)
        return back(request)

    @admin.action(description="Resume the selected keys", permissions=["change"])
    def resume_keys(self, request: HttpRequest, queryset: QuerySet[Instance]) -> HttpResponse | None:
        count = skipped = 0
        for instance in queryset:
            if not instance.paused:
                skipped += 1
                continue
            instance_resume(instance=instance)
            self.log_change(request, instance, "Resumed.")
            count += 1
        note = f" ({skipped} were not paused)" if skipped else ""
        self.message_user(request, f"Resumed {count} key(s){note}.", messages.SUCCESS)
        return back(request)


def instance_admin_url(instance: Instance) -> str:
    return reverse("admin:objects_instance_change", args=[instance.pk])

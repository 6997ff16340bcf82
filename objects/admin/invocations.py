"""Admin for invocations: read-only lists and details, with cancel, kill and retry as confirmed actions."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from ..api.refusals import is_refusal, retry_unless_refused
from ..errors import Conflict
from ..models import Invocation, JournalEntry, Status
from ..selectors import invocation_awaiting, invocation_caller_chain
from ..services import invocation_cancel, invocation_kill
from .display import json_html
from .navigation import back, next_url

_HEX_ID = re.compile(r"^(?:inv_)?([0-9a-fA-F]{32})$")


class JournalEntryInline(admin.TabularInline):
    model = JournalEntry
    fields = ("index", "kind", "name", "result_html", "failure", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description="result")
    def result_html(self, obj: JournalEntry) -> str:
        return json_html(obj.result)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class QueueFilter(admin.SimpleListFilter):
    """Pending invocations by why they have not run: not yet due, due and waiting, or held by a paused key."""

    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("waiting", "waiting (due)"),
            ("scheduled", "scheduled (not yet due)"),
            ("paused", "blocked: key paused"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invocation]) -> QuerySet[Invocation]:
        pending = queryset.filter(status=Status.PENDING)
        due = Q(not_before__isnull=True) | Q(not_before__lte=timezone.now())
        if self.value() == "waiting":
            return pending.filter(due, instance__paused=False)
        if self.value() == "scheduled":
            return pending.exclude(due).filter(instance__paused=False)
        if self.value() == "paused":
            return pending.filter(instance__paused=True)
        return queryset


@admin.register(Invocation)
class InvocationAdmin(admin.ModelAdmin):
    # Fits 1280 px: a short id (the full one in its title), the status badge next to it, then what it runs.
    list_display = ("short_id", "status_badge", "target", "attempts", "principal_name", "created_at", "finished_at")
    list_filter = ("status", QueueFilter, "type_name", "handler", "kind", "created_at")
    search_fields = ("key",)
    search_help_text = "A key (contains; ^ for a prefix), an invocation id (inv_…) or a number (acceptance order)."
    date_hierarchy = "created_at"
    list_select_related = ("instance",)
    fields = (
        "public_id",
        "instance_link",
        "handler",
        "kind",
        "status_badge",
        "awaiting_html",
        "input_html",
        "output_html",
        "error_message",
        "error_code",
        "traceback_html",
        "attempts",
        "not_before",
        "created_at",
        "started_at",
        "finished_at",
        "principal_text",
        "caller_object",
        "caller_chain",
        "idempotency_key",
        "kill_requested",
        "partition",
    )
    readonly_fields = fields
    inlines = [JournalEntryInline]
    actions = ["cancel_invocations", "kill_invocations", "retry_invocations"]
    change_form_template = "admin/objects/invocation/change_form.html"
    change_list_template = "admin/objects/invocation/change_list.html"
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Rows change only through the actions (cancel, kill, retry); the form is never saved.
        return obj is None and super().has_change_permission(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invocation]:
        return super().get_queryset(request).select_related("instance", "caller")

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        match = _HEX_ID.match(term)
        if match:
            return queryset.filter(uid=uuid.UUID(hex=match.group(1))), False
        if term.isdigit():
            return queryset.filter(pk=int(term)) | queryset.filter(key=term), False
        if term.startswith("^") and len(term) > 1:
            return queryset.filter(key__startswith=term[1:]), False
        return queryset.filter(key__icontains=term), False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        extra_context = {**(extra_context or {}), "can_operate": super().has_change_permission(request)}
        invocation = self.get_object(request, object_id)
        if invocation is not None:
            extra_context.update(made=invocation_made(invocation=invocation), refusal=is_refusal(invocation))
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="id", ordering="id")
    def short_id(self, obj: Invocation) -> str:
        return format_html('<span title="{}">{}…</span>', obj.public_id, obj.public_id[:12])

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Invocation) -> str:
        return status_badge(obj)

    @admin.display(description="object.handler", ordering="type_name")
    def target(self, obj: Invocation) -> str:
        return f"{obj.type_name}/{obj.key}.{obj.handler}"

    @admin.display(description="instance")
    def instance_link(self, obj: Invocation) -> str:
        url = reverse("admin:objects_instance_change", args=[obj.instance_id])
        return format_html('<a href="{}">{}/{}</a>', url, obj.type_name, obj.key)

    @admin.display(description="awaiting")
    def awaiting_html(self, obj: Invocation) -> str:
        awaiting = invocation_awaiting(invocation=obj)
        if awaiting is None:
            return "— (not suspended)"
        sleep, tokens = awaiting["sleep_until"], awaiting["awakeables"]
        listed = format_html_join(", ", "<code>{}</code>", ((token,) for token in tokens)) if tokens else "none"
        return format_html(
            '<span class="vo-awaiting">awakeables: {}; sleep until: {}</span>',
            listed,
            sleep.isoformat() if sleep else "—",
        )

    @admin.display(description="input")
    def input_html(self, obj: Invocation) -> str:
        return json_html(obj.input)

    @admin.display(description="output")
    def output_html(self, obj: Invocation) -> str:
        return json_html(obj.output)

    @admin.display(description="traceback")
    def traceback_html(self, obj: Invocation) -> str:
        if not obj.error_traceback:
            return "—"
        return format_html('<pre class="vo-traceback">{}</pre>', obj.error_traceback)

    @admin.display(description="user")
    def principal_name(self, obj: Invocation) -> str:
        return obj.principal["username"] if obj.principal else ""

    @admin.display(description="runs for (principal)")
    def principal_text(self, obj: Invocation) -> str:
        if not obj.principal:
            return "— (no signed-in user)"
        return f"{obj.principal['username']} (id {obj.principal['id']})"

    @admin.display(description="called by object")
    def caller_object(self, obj: Invocation) -> str:
        return f"{obj.caller_type}/{obj.caller_key}" if obj.caller_type else "— (called from outside)"

    @admin.display(description="caller chain (nearest first)")
    def caller_chain(self, obj: Invocation) -> str:
        chain = invocation_caller_chain(invocation=obj)
        if not chain:
            return "— (called from outside: ingress, API or Django code)"
        return format_html_join(
            " ← ",
            '<a href="{}">{} {}/{}.{}</a>',
            (
                (reverse("admin:objects_invocation_change", args=[c.pk]), c.public_id, c.type_name, c.key, c.handler)
                for c in chain
            ),
        )

    def _operate(
        self,
        request: HttpRequest,
        queryset: QuerySet[Invocation],
        *,
        action: str,
        verb: str,
        operation: Callable[..., Invocation],
        warning: str,
    ) -> HttpResponse | None:
        if request.POST.get("post") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": f"{verb.capitalize()} invocations?",
                "opts": self.opts,
                "invocations": list(queryset),
                "action": action,
                "verb": verb,
                "warning": warning,
                "next": next_url(request),
            }
            return TemplateResponse(request, "admin/objects/invocation/action_confirmation.html", context)
        done = 0
        refused: list[str] = []
        for invocation in queryset:
            try:
                result = operation(invocation=invocation)
            except Conflict as exc:
                refused.append(exc.message)
                continue
            done += 1
            self.log_change(request, invocation, f"{verb.capitalize()}: now {result.status}.")
        if done:
            self.message_user(request, f"{verb.capitalize()}: {done} invocation(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Refused ({len(refused)}): " + " ".join(refused), messages.WARNING)
        return back(request)

    @admin.action(
        description="Cancel the selected invocations (pending, backing off, suspended)", permissions=["change"]
    )
    def cancel_invocations(self, request: HttpRequest, queryset: QuerySet[Invocation]) -> HttpResponse | None:
        return self._operate(
            request,
            queryset,
            action="cancel_invocations",
            verb="cancel",
            operation=invocation_cancel,
            warning="Cancelled invocations never run (again); a waiting caller gets a 409; a suspended one lets go of "
            "its key.",
        )

    @admin.action(description="Kill the selected invocations (running: effects discarded)", permissions=["change"])
    def kill_invocations(self, request: HttpRequest, queryset: QuerySet[Invocation]) -> HttpResponse | None:
        return self._operate(
            request,
            queryset,
            action="kill_invocations",
            verb="kill",
            operation=invocation_kill,
            warning="A running invocation's state writes and sends are discarded when its handler returns.",
        )

    @admin.action(description="Retry the selected invocations now (failed, backing off)", permissions=["change"])
    def retry_invocations(self, request: HttpRequest, queryset: QuerySet[Invocation]) -> HttpResponse | None:
        return self._operate(
            request,
            queryset,
            action="retry_invocations",
            verb="retry",
            operation=retry_unless_refused,
            warning="The invocations go back to their keys' inboxes and run again from their journal.",
        )


def status_badge(invocation: Invocation) -> str:
    """The status as a coloured badge; a pending invocation says why it has not run (a paused key, not yet
    due) and a refusal says so with its code."""
    status, label, title = invocation.status, invocation.get_status_display(), ""
    if status == Status.PENDING and invocation.instance.paused:
        status, label = "blocked", "blocked: key paused"
        title = invocation.instance.paused_reason or "paused by an operator"
    elif status == Status.PENDING and invocation.not_before and invocation.not_before > timezone.now():
        status, label, title = "scheduled", "scheduled", f"due at {invocation.not_before:%Y-%m-%d %H:%M:%S %Z}"
    elif is_refusal(invocation):
        status, label, title = "refused", f"refused ({invocation.error_code})", invocation.error_message[:200]
    return format_html('<span class="vo-badge vo-badge-{}" title="{}">{}</span>', status, title, label)


def invocation_made(*, invocation: Invocation, limit: int = 100) -> list[dict[str, Any]]:
    """The calls (ctx.call) and sends (ctx.send, timers) an invocation made, oldest first: each a row whose
    `caller` is it. A call's row is created running, as it starts (started_at <= created_at); a send's is
    created pending and starts after its caller commits. Shared calls read without a row and are not listed."""
    rows = list(invocation.callees.select_related("instance").order_by("id")[:limit])
    return [
        {
            "invocation": row,
            "via": "call" if row.started_at is not None and row.started_at <= row.created_at else "send",
            "badge": status_badge(row),
            "url": reverse("admin:objects_invocation_change", args=[row.pk]),
        }
        for row in rows
    ]

"""State edits from the admin: set or delete one entry, restore from history, clear all. Each carries the
version the operator saw and goes through `services.state_edit` (the key's lock); a race is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse

from ..api.body import json_parse
from ..errors import Conflict, InvalidInput, ObjectsError
from ..models import Instance, StateChange, StateEntry
from ..registry import get_object
from ..services import state_edit
from .diffing import value_diff
from .display import json_html, json_text
from .navigation import back, next_url

if TYPE_CHECKING:
    from .instances import InstanceAdmin


class EntryForm(forms.Form):
    name = forms.CharField(max_length=255, help_text="The state entry's name.")
    value = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 18, "cols": 100, "class": "vLargeTextField", "spellcheck": "false"}),
        strip=False,
        help_text='A JSON value: 42, "text", [1, 2], {"a": 1}, null.',
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    def clean_value(self) -> Any:
        """The ingress's strict reader (no NaN or out-of-range numbers, no NUL or lone surrogate, at most 64
        levels deep): PostgreSQL could not store the rest, and a deep value would exhaust the parser."""
        text = self.cleaned_data["value"]
        if not text.strip():
            raise ValidationError("Not valid JSON: the value is empty (write null for no value).")
        try:
            return json_parse(text.encode("utf-8", "surrogatepass"))
        except InvalidInput as exc:
            raise ValidationError(exc.message.replace("Malformed JSON:", "Not valid JSON:", 1)) from None


class VersionForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)


def _page(model_admin: InstanceAdmin, request: HttpRequest, template: str, status: int = 200, **extra) -> HttpResponse:
    context = {**model_admin.admin_site.each_context(request), "opts": model_admin.opts, **extra}
    return TemplateResponse(request, f"admin/objects/instance/{template}", context, status=status)


def _back(instance: Instance) -> HttpResponse:
    return redirect(reverse("admin:objects_instance_change", args=[instance.pk]))


def _apply(model_admin, request, instance: Instance, *, version: int, log: str, **changes) -> int | None:
    """Run the edit; on a refusal show its message and return None."""
    try:
        new_version = state_edit(
            type_name=instance.type_name,
            key=instance.key,
            expected_version=version,
            user_id=request.user.pk,
            **changes,
        )
    except Conflict as exc:
        messages.error(request, f"Not changed: {exc.message}")
        return None
    model_admin.log_change(request, instance, f"{log} (version {new_version}).")
    return new_version


def entry_edit(model_admin: InstanceAdmin, request: HttpRequest, instance: Instance) -> HttpResponse:
    """GET: the entry's value as pretty JSON in a form; POST: validate and set it (or add a new entry).

    When the type declares a state schema, the value is checked against it (errors name the path) and the
    change is shown as a before/after difference to confirm; the confirmed POST is checked again."""
    name = request.GET.get("name", "")
    entry = StateEntry.objects.filter(instance=instance, name=name).first() if name else None
    declared = get_object(instance.type_name)
    confirming = declared is not None and bool(declared.state_adapters)
    status = 200
    if request.method == "POST" and request.POST.get("back"):
        form = EntryForm(initial={key: request.POST.get(key, "") for key in ("name", "value", "version")})
    elif request.method == "POST":
        form = EntryForm(request.POST)
        if not form.is_valid():
            status = 400
        else:
            name, value = form.cleaned_data["name"], form.cleaned_data["value"]
            problems = declared.entry_errors(name, value) if declared is not None else []
            if problems:
                form.add_error("value", [f"Does not fit the {instance.type_name} state schema: {p}" for p in problems])
                status = 400
            elif confirming and request.POST.get("confirm") != "yes":
                return _confirm(model_admin, request, instance, form)
            else:
                try:
                    new_version = _apply(
                        model_admin,
                        request,
                        instance,
                        version=form.cleaned_data["version"],
                        log=f"Set state entry {name!r}",
                        set_entries={name: value},
                    )
                except ObjectsError as exc:  # an invalid name or a value over the size limit
                    form.add_error(None, exc.message)
                    status = exc.status_code
                else:
                    if new_version is not None:
                        messages.success(request, f"Set {name!r} on {instance} (version {new_version}).")
                        return _back(instance)
                    status = 409
    else:
        form = EntryForm(
            initial={"name": name, "value": json_text(entry.value) if entry else "", "version": instance.version}
        )
    current = StateEntry.objects.filter(instance=instance, name=name).first() if name else None
    return _page(
        model_admin,
        request,
        "entry_form.html",
        status=status,
        title=f"Edit {name!r} of {instance}" if name else f"Add a state entry to {instance}",
        original=instance,
        form=form,
        current_html=json_html(current.value) if current else None,
        instance_version=Instance.objects.filter(pk=instance.pk).values_list("version", flat=True).first(),
        schema_checked=confirming,
    )


def _confirm(model_admin: InstanceAdmin, request: HttpRequest, instance: Instance, form: EntryForm) -> HttpResponse:
    """The before/after page of a checked edit: the difference, both values, and the button that saves it."""
    name, value = form.cleaned_data["name"], form.cleaned_data["value"]
    current = StateEntry.objects.filter(instance=instance, name=name).first()
    before = current.value if current is not None else None
    return _page(
        model_admin,
        request,
        "entry_confirm.html",
        title=f"Confirm the change of {name!r} of {instance}",
        original=instance,
        name=name,
        value_text=form.data["value"],
        version=form.cleaned_data["version"],
        diff=value_diff(before, value, name, created=current is None),
        before_html=json_html(before) if current is not None else None,
        after_html=json_html(value),
    )


def entry_delete(model_admin: InstanceAdmin, request: HttpRequest, instance: Instance) -> HttpResponse:
    """GET: confirm deleting one entry; POST: delete it if the version is still the one shown."""
    name = request.GET.get("name", "")
    entry = get_object_or_404(StateEntry, instance=instance, name=name)
    if request.method == "POST":
        form = VersionForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Not changed: the request carried no version; reload and retry.")
            return _back(instance)
        new_version = _apply(
            model_admin,
            request,
            instance,
            version=form.cleaned_data["version"],
            log=f"Deleted state entry {name!r}",
            clear=[name],
        )
        if new_version is not None:
            messages.success(request, f"Deleted {name!r} from {instance} (version {new_version}).")
        return _back(instance)
    return _page(
        model_admin,
        request,
        "entry_delete.html",
        title=f"Delete {name!r} of {instance}?",
        original=instance,
        entry=entry,
        entry_html=json_html(entry.value),
        version=instance.version,
    )


def history_restore(
    model_admin: InstanceAdmin, request: HttpRequest, instance: Instance, change_id: int
) -> HttpResponse:
    """POST: put the entry back as a history row shows it: a set row's new value, a clear row's old value."""
    change = get_object_or_404(StateChange, pk=change_id, instance=instance)
    if request.method != "POST":
        return _back(instance)
    form = VersionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not changed: the request carried no version; reload and retry.")
        return _back(instance)
    value = change.new_value if change.action == StateChange.Action.SET else change.old_value
    new_version = _apply(
        model_admin,
        request,
        instance,
        version=form.cleaned_data["version"],
        log=f"Restored state entry {change.name!r} from history #{change.pk} (version {change.version})",
        set_entries={change.name: value},
    )
    if new_version is not None:
        messages.success(
            request, f"Restored {change.name!r} as of version {change.version} (now version {new_version})."
        )
    return _back(instance)


def clear_all(model_admin: InstanceAdmin, request: HttpRequest, queryset: QuerySet[Instance]) -> HttpResponse | None:
    """The "Clear all state" action: a confirmation page carrying each instance's version, then the clears."""
    instances = list(queryset)
    if request.POST.get("post") != "yes":
        return _page(
            model_admin,
            request,
            "clear_all_confirmation.html",
            title="Clear all state?",
            instances=instances,
            total_entries=sum(i.entry_count for i in instances),  # type: ignore[attr-defined]
            action="clear_all_state",
            next=next_url(request),
        )
    cleared = entries = 0
    refused: list[str] = []
    for instance in instances:
        try:
            version = int(request.POST.get(f"version_{instance.pk}", ""))
        except ValueError:
            refused.append(f"{instance}: it was not on the confirmation page")
            continue
        try:
            state_edit(
                type_name=instance.type_name,
                key=instance.key,
                expected_version=version,
                clear_all=True,
                user_id=request.user.pk,
            )
        except Conflict as exc:
            refused.append(exc.message)
            continue
        cleared += 1
        count: int = instance.entry_count  # type: ignore[attr-defined]  # annotated by the admin's queryset
        entries += count
        model_admin.log_change(request, instance, f"Cleared all state ({count} entries).")
    if cleared:
        model_admin.message_user(
            request,
            f"Cleared all state of {cleared} instance(s): {entries} entr{'y' if entries == 1 else 'ies'} removed.",
            messages.SUCCESS,
        )
    if refused:
        model_admin.message_user(request, f"Not cleared ({len(refused)}): " + " ".join(refused), messages.ERROR)
    return back(request)

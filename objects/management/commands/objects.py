"""`manage.py objects state get|set|clear` and `manage.py objects invocations list|cancel|kill|retry`.

The same services as the admin and /api/: state edits take the key's lock (refused when it stays held past
OBJECTS_LOCK_TIMEOUT_MS) and are refused when the key changed since `--expect-version`; every change is
recorded in the admin log under `--user`, a staff user allowed to make it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Model

from objects import services
from objects.api.refusals import retry_unless_refused
from objects.errors import ObjectsError
from objects.models import Instance, Invocation, StateEntry, Status
from objects.registry import get_object

INVOCATION_OPERATIONS = {
    "cancel": services.invocation_cancel,
    "kill": services.invocation_kill,
    "retry": retry_unless_refused,  # a handler's refusal (4xx) is its answer: refused, as in the admin and API
}


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


class Command(BaseCommand):
    help = "Read and change virtual objects' state; list, cancel, kill and retry invocations."

    def add_arguments(self, parser: CommandParser) -> None:
        areas = parser.add_subparsers(dest="area", required=True)
        state = areas.add_parser("state", help="One key's state.").add_subparsers(dest="action", required=True)
        get = state.add_parser("get", help="Print the key's entries as JSON, or one entry's value.")
        get.add_argument("type_name", metavar="TYPE")
        get.add_argument("key", metavar="KEY")
        get.add_argument("name", metavar="NAME", nargs="?")
        put = state.add_parser("set", help="Set one entry to a JSON value (- reads it from standard input).")
        put.add_argument("type_name", metavar="TYPE")
        put.add_argument("key", metavar="KEY")
        put.add_argument("name", metavar="NAME")
        put.add_argument("value", metavar="JSON")
        clear = state.add_parser("clear", help="Clear one entry, or every entry of the key.")
        clear.add_argument("type_name", metavar="TYPE")
        clear.add_argument("key", metavar="KEY")
        clear.add_argument("name", metavar="NAME", nargs="?")
        for sub in (put, clear):
            sub.add_argument("--user", required=True, help="The staff user the change is recorded for.")
            sub.add_argument(
                "--expect-version", type=int, help="Refuse the change when the key's version is not this one."
            )

        invocations = areas.add_parser("invocations", help="Invocations.")
        actions = invocations.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="Newest first.")
        listing.add_argument("--status", choices=Status.values)
        listing.add_argument("--type", dest="type_name")
        listing.add_argument("--key")
        listing.add_argument("--handler")
        listing.add_argument("--limit", type=int, default=50)
        listing.add_argument("--json", action="store_true", help="One JSON object per line.")
        for verb, operation in INVOCATION_OPERATIONS.items():
            sub = actions.add_parser(verb, help=(operation.__doc__ or "").strip().splitlines()[0])
            sub.add_argument("ids", metavar="ID", nargs="+", help="Invocation ids (inv_...).")
            sub.add_argument("--user", required=True, help="The staff user the change is recorded for.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"{options['area']}_{options['action']}")(**options)
        except ObjectsError as exc:
            raise CommandError(exc.message) from None

    # state ------------------------------------------------------------------------------------------------

    def state_get(self, *, type_name: str, key: str, name: str | None, **_: Any) -> None:
        instance = services.instance_get(type_name=type_name, key=key)
        entries = dict(StateEntry.objects.filter(instance=instance).values_list("name", "value"))
        if name is not None and name not in entries:
            raise CommandError(f"{type_name}/{key} has no entry {name!r} (entries: {', '.join(sorted(entries))}).")
        self.stdout.write(dumps(entries[name] if name is not None else entries))
        self.stderr.write(f"{type_name}/{key}: version {instance.version}, {len(entries)} entries")

    def state_set(self, *, type_name: str, key: str, name: str, value: str, **options: Any) -> None:
        if not Instance.objects.filter(type_name=type_name, key=key).exists() and get_object(type_name) is None:
            raise CommandError(f"No object type {type_name!r} and no instance {type_name}/{key}.")
        text = sys.stdin.read() if value == "-" else value
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"Not valid JSON: {exc} (a string needs quotes: '\"text\"').") from None
        self._edit(type_name, key, f"Set state entry {name!r}", options, set_entries={name: parsed})

    def state_clear(self, *, type_name: str, key: str, name: str | None, **options: Any) -> None:
        instance = services.instance_get(type_name=type_name, key=key)
        if name is None:
            self._edit(type_name, key, "Cleared all state", options, clear_all=True)
        elif not StateEntry.objects.filter(instance=instance, name=name).exists():
            raise CommandError(f"{type_name}/{key} has no entry {name!r}.")
        else:
            self._edit(type_name, key, f"Deleted state entry {name!r}", options, clear=[name])

    def _edit(self, type_name: str, key: str, what: str, options: dict[str, Any], **changes: Any) -> None:
        user = self._user(options["user"], "objects.change_instance")
        version = services.state_edit(
            type_name=type_name,
            key=key,
            expected_version=options["expect_version"],
            user_id=user.pk,
            **changes,
        )
        instance = services.instance_get(type_name=type_name, key=key)
        self._log(user, instance, f"{what} (version {version}; manage.py objects).")
        self.stdout.write(f"{what} on {type_name}/{key}: version {version}.")

    # invocations ------------------------------------------------------------------------------------------

    def invocations_list(self, **options: Any) -> None:
        queryset = Invocation.objects.order_by("-created_at", "-id")
        for field in ("status", "type_name", "key", "handler"):
            if options[field]:
                queryset = queryset.filter(**{field: options[field]})
        for inv in queryset[: max(options["limit"], 0)]:
            row = {
                "id": inv.public_id,
                "type": inv.type_name,
                "key": inv.key,
                "handler": inv.handler,
                "status": inv.status,
                "attempts": inv.attempts,
                "created_at": inv.created_at.isoformat(),
            }
            if options["json"]:
                self.stdout.write(json.dumps(row, ensure_ascii=False))
            else:
                self.stdout.write(
                    f"{row['id']}  {row['status']:<11}  {inv.type_name}/{inv.key}.{inv.handler}  "
                    f"attempts {inv.attempts}  {row['created_at']}"
                )

    def invocations_cancel(self, **options: Any) -> None:
        self._operate("cancel", **options)

    def invocations_kill(self, **options: Any) -> None:
        self._operate("kill", **options)

    def invocations_retry(self, **options: Any) -> None:
        self._operate("retry", **options)

    def _operate(self, verb: str, *, ids: list[str], user: str, **_: Any) -> None:
        actor = self._user(user, "objects.change_invocation")
        refused = []
        for public_id in ids:
            try:
                result = INVOCATION_OPERATIONS[verb](invocation=services.invocation_get(public_id))
            except ObjectsError as exc:
                refused.append(exc.message)
                continue
            self._log(actor, result, f"{verb.capitalize()}: now {result.status} (manage.py objects).")
            self.stdout.write(f"{result.public_id}: {result.status}")
        if refused:
            raise CommandError(f"Refused ({len(refused)}): " + " ".join(refused))

    # shared -----------------------------------------------------------------------------------------------

    def _user(self, username: str, permission: str) -> Any:
        user = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        if user is None or not user.is_active or not user.is_staff:
            raise CommandError(f"--user {username!r}: no active staff user of that name.")
        if not user.has_perm(permission):
            raise CommandError(f"--user {username!r} may not do this (needs the {permission} permission).")
        return user

    def _log(self, user: Any, obj: Model, message: str) -> None:
        LogEntry.objects.log_actions(
            user_id=user.pk,
            queryset=[obj],
            action_flag=CHANGE,
            change_message=message,
            single_object=True,
        )

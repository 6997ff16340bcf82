"""Durable rows: instances (the per-key lock), state entries, invocations (the inbox), journal, history."""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.expressions import Col, Value

from . import jsoncodec


class Built:
    """`Model.built(db, values)`: an instance from `values` (field attname -> value; every other field its
    default), built positionally like a row read from the database: 4x faster than keyword arguments, for the
    hot paths that already know every value (a fresh invocation just inserted, a shared handler's stand-in,
    the key a pass runs)."""

    @classmethod
    def built(cls, db: str | None, values: dict[str, Any]) -> Any:
        names, defaults = _defaults(cls)  # type: ignore[arg-type]  # a model class is hashable
        row = [values.get(name, default) for name, default in zip(names, defaults, strict=True)]
        return cls.from_db(db, names, row)  # type: ignore[attr-defined]


class _JsonbCol(Col):
    """A `JSONText` column where a query compares or transforms it: cast to jsonb on PostgreSQL."""

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        sql, params = super().as_sql(compiler, connection)
        return (sql + JSONB_CAST if connection.vendor == "postgresql" else sql), params


JSONB_CAST = "::jsonb"


class JSONText(models.JSONField):
    """A JSONField kept on PostgreSQL as `json` (the text as written, checked but not parsed into a tree) rather
    than `jsonb`: a state value is written and read whole on every call, and parsing a large one into jsonb and
    printing it back was about a third of PostgreSQL's work on a sequential call (docs/decisions/0008).

    Queries see a JSONField: a filter, a key transform or an ordering casts the column to jsonb, so `value=...`,
    `value__contains` and `value__name` mean what they mean on a JSONField; a select reads the text. Elsewhere
    (SQLite) it is a JSONField."""

    def db_type(self, connection: Any) -> Any:
        return "json" if connection.vendor == "postgresql" else super().db_type(connection)

    def get_col(self, alias: str, output_field: Any = None) -> Any:
        if alias == self.model._meta.db_table and (output_field is None or output_field == self):
            return self.cached_col
        return _JsonbCol(alias, self, output_field)

    @functools.cached_property
    def cached_col(self) -> Any:
        return _JsonbCol(self.model._meta.db_table, self)

    def select_format(self, compiler: Any, sql: str, params: Any) -> Any:
        if compiler.connection.vendor == "postgresql" and sql.endswith(JSONB_CAST):
            sql = sql[: -len(JSONB_CAST)] + "::text"  # the stored text, not a jsonb printed back
        return super().select_format(compiler, sql, params)

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        """On PostgreSQL the JSON text, sent untyped so that PostgreSQL reads it as the column's json (a jsonb
        parameter would be parsed into jsonb and printed back). None is SQL NULL, `Value(None, JSONField())`
        JSON null, as on a JSONField."""
        if connection.vendor != "postgresql" or value is None:
            return super().get_db_prep_save(value, connection)
        if isinstance(value, Value) and value.value is None and isinstance(value.output_field, models.JSONField):
            return "null"
        if hasattr(value, "as_sql"):
            return value
        value = self.get_prep_value(value)
        return jsoncodec.dumps(value) if self.encoder is None else json.dumps(value, cls=self.encoder)


@functools.cache
def _defaults(model: Any) -> tuple[list[str], list[Any]]:
    """Each field's attname and default, in column order (the primary key and fields whose default is made
    per row, such as the uid, have none)."""
    fields = model._meta.concrete_fields
    defaults = [None if f.primary_key or (f.has_default() and callable(f.default)) else f.get_default() for f in fields]
    return [f.attname for f in fields], defaults


class Instance(Built, models.Model):
    """One key of one object type. Its row is the key's lock (SELECT ... FOR NO KEY UPDATE)."""

    type_name = models.CharField("object type", max_length=100)
    key = models.CharField(max_length=255, help_text="The instance address, any Unicode, 1-255 characters.")
    version = models.BigIntegerField(default=0, help_text="Increases on every committed state change.")
    paused = models.BooleanField(default=False, help_text="A paused key's inbox waits until resumed.")
    paused_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    changed_at = models.DateTimeField(null=True, blank=True, help_text="Last committed state change.")

    class Meta:
        verbose_name = "object instance"
        ordering = ["type_name", "key"]
        constraints = [models.UniqueConstraint(fields=["type_name", "key"], name="objects_instance_type_key_uniq")]
        indexes = [models.Index(fields=["changed_at"], name="objects_instance_changed_idx")]

    def __str__(self) -> str:
        return f"{self.type_name}/{self.key}"


class StateEntry(models.Model):
    """One named state entry of an instance, a JSON value."""

    # no index of its own: the (instance, name) unique constraint's index serves lookups by instance
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="entries", db_index=False)
    name = models.CharField(max_length=255)
    value = JSONText(null=True)
    size = models.PositiveIntegerField(default=0, help_text="Size of the JSON value in bytes.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "state entry"
        verbose_name_plural = "state entries"
        ordering = ["instance", "name"]
        constraints = [models.UniqueConstraint(fields=["instance", "name"], name="objects_entry_instance_name_uniq")]

    def __str__(self) -> str:
        return f"{self.instance}:{self.name}"


class Status(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    BACKING_OFF = "backing_off", "backing off"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"
    KILLED = "killed", "killed"
    SUSPENDED = "suspended", "suspended"


OPEN_STATUSES = (Status.PENDING, Status.RUNNING, Status.BACKING_OFF, Status.SUSPENDED)
DONE_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.KILLED)
# An invocation still to run: the claim's and the inbox's predicate in their raw SQL (objects/store/sql.py,
# RUNNABLE_SQL), word for word the condition of the partial index that serves them (objects_inv_partition_idx),
# so PostgreSQL can use it.
RUNNABLE_STATUSES = (Status.PENDING, Status.BACKING_OFF, Status.SUSPENDED)


class Invocation(Built, models.Model):
    """One request to run one handler on one key; the pending ones of a key are its inbox."""

    id = models.BigAutoField(primary_key=True, help_text="Acceptance order.")
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="invocations")
    type_name = models.CharField("object type", max_length=100)
    key = models.CharField(max_length=255)
    handler = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=[("exclusive", "exclusive"), ("shared", "shared")])
    partition = models.PositiveSmallIntegerField(default=0)
    input = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    output = models.JSONField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    error_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error_type = models.CharField(max_length=100, blank=True, help_text="Class of the last error.")
    error_traceback = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Failed attempts so far.")
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="Delayed send, next retry, or when a suspended invocation wakes."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # indexed only where set (objects_inv_caller_idx): most invocations have no caller
    caller = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="callees", db_index=False
    )
    # the calling object itself, kept on the row: the caller's row may be gone (retention) before a delayed send runs
    caller_type = models.CharField(
        "caller's object type", max_length=100, blank=True, default="", help_text="Empty when called from outside."
    )
    caller_key = models.CharField("caller's key", max_length=255, blank=True, default="")
    principal = models.JSONField(
        null=True,
        blank=True,
        help_text="The user it runs for, {id, username}: the one the ingress authenticated or objects.call named; "
        "kept by the invocations it calls and sends.",
    )
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    input_hash = models.CharField(max_length=64, blank=True)
    idempotency_expires_at = models.DateTimeField(null=True, blank=True)
    kill_requested = models.BooleanField(default=False)
    timer_name = models.CharField(
        max_length=100, blank=True, default="", help_text="The named timer (ctx.timer) this delayed send is."
    )
    timer_every = models.DurationField(null=True, blank=True, help_text="A periodic timer's interval.")

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["instance", "id"],
                name="objects_inv_inbox_idx",
                condition=Q(status__in=["pending", "backing_off", "running", "suspended"]),
            ),
            models.Index(
                fields=["partition", "id"],
                name="objects_inv_partition_idx",
                condition=Q(status__in=["pending", "backing_off", "suspended"]),
            ),
            # the claim's test for a key held back by a backing-off or suspended invocation: a probe of this small
            # index per candidate, whatever the planner believes of the (often just grown) pending rows
            models.Index(
                fields=["instance"],
                name="objects_inv_blocker_idx",
                condition=Q(status__in=["backing_off", "suspended"]),
            ),
            models.Index(fields=["status", "created_at"], name="objects_inv_status_idx"),
            models.Index(fields=["type_name", "handler", "created_at"], name="objects_inv_type_idx"),
            models.Index(fields=["caller"], name="objects_inv_caller_idx", condition=Q(caller__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["type_name", "key", "handler", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="objects_inv_idempotency_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"{self.public_id} {self.type_name}/{self.key}.{self.handler}"

    @property
    def public_id(self) -> str:
        return f"inv_{self.uid.hex}"

    @property
    def is_done(self) -> bool:
        return self.status in DONE_STATUSES


class JournalEntry(models.Model):
    """A recorded step: a side effect (`ctx.run`), a sleep or an awakeable. A retried or resumed invocation gets
    this result instead of running the step again."""

    class Kind(models.TextChoices):
        RUN = "run", "run"
        SLEEP = "sleep", "sleep"
        AWAKEABLE = "awakeable", "awakeable"

    invocation = models.ForeignKey(Invocation, on_delete=models.CASCADE, related_name="journal")
    index = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RUN, db_default=Kind.RUN)
    name = models.CharField(max_length=255)
    result = models.JSONField(null=True)
    failure = models.TextField(blank=True, help_text="The step's error, when it failed.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "journal entries"
        ordering = ["invocation", "index"]
        constraints = [models.UniqueConstraint(fields=["invocation", "index"], name="objects_journal_inv_index_uniq")]


class Awakeable(models.Model):
    """A completion an invocation may wait for (`ctx.awakeable`), resolved or rejected from outside by its id."""

    token = models.CharField("id", max_length=64, unique=True, help_text="sign_1 and 160 random bits, base64url.")
    invocation = models.ForeignKey(Invocation, on_delete=models.CASCADE, related_name="awakeables")
    index = models.PositiveIntegerField(help_text="Its step in the invocation's journal.")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    value = models.JSONField(null=True, blank=True, help_text="The resolved value.")
    rejected = models.BooleanField(default=False)
    failure = models.TextField(blank=True, help_text="The reason it was rejected with.")

    class Meta:
        ordering = ["invocation", "index"]

    def __str__(self) -> str:
        return self.token


class StateChange(models.Model):
    """History: one committed change of one state entry, by an invocation or a staff user."""

    class Action(models.TextChoices):
        SET = "set", "set"
        CLEAR = "clear", "clear"

    # no index of its own: objects_change_instance_idx (instance, -id) serves lookups by instance
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="history", db_index=False)
    name = models.CharField(max_length=255)
    action = models.CharField(max_length=5, choices=Action.choices)
    old_value = JSONText(null=True, blank=True)
    new_value = JSONText(null=True, blank=True)
    version = models.BigIntegerField(help_text="Instance version after the change.")
    invocation = models.ForeignKey(Invocation, null=True, blank=True, on_delete=models.SET_NULL)
    # indexed only where set (objects_change_user_idx): a handler's changes have no user
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "state change"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["instance", "-id"], name="objects_change_instance_idx"),
            models.Index(fields=["at"], name="objects_change_at_idx"),
            models.Index(fields=["user"], name="objects_change_user_idx", condition=Q(user__isnull=False)),
        ]

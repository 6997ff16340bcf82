"""Serializers of the management API: object types, instances, state, invocations, and action bodies."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Instance, Invocation, JournalEntry
from ..selectors import instance_timers, invocation_awaiting
from .schemas import input_schema


class HandlerSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["exclusive", "shared"])
    takes_input = serializers.BooleanField()
    input_schema = serializers.SerializerMethodField(help_text="JSON Schema of the input; null when it takes none.")

    @extend_schema_field({"type": "object", "nullable": True, "additionalProperties": True})
    def get_input_schema(self, handler: Any) -> dict[str, Any] | None:
        return input_schema(handler)


class ObjectTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    state_ttl_seconds = serializers.SerializerMethodField()
    handlers = serializers.SerializerMethodField()

    def get_state_ttl_seconds(self, obj: Any) -> float | None:
        return obj.state_ttl.total_seconds() if obj.state_ttl else None

    @extend_schema_field(HandlerSerializer(many=True))
    def get_handlers(self, obj: Any) -> Any:
        return HandlerSerializer(sorted(obj.handlers.values(), key=lambda h: h.name), many=True).data


class InstanceSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="type_name")
    entry_count = serializers.IntegerField(read_only=True)
    state_size = serializers.IntegerField(read_only=True, help_text="Bytes of JSON held in state.")
    inbox_depth = serializers.IntegerField(read_only=True, help_text="Pending and backing-off exclusive invocations.")

    class Meta:
        model = Instance
        fields = [
            "id",
            "type",
            "key",
            "version",
            "paused",
            "paused_reason",
            "created_at",
            "changed_at",
            "entry_count",
            "state_size",
            "inbox_depth",
        ]


class TimerSerializer(serializers.Serializer):
    name = serializers.CharField()
    handler = serializers.CharField()
    next_at = serializers.DateTimeField(help_text="When it runs next.")
    every_seconds = serializers.FloatField(allow_null=True, help_text="A periodic timer's interval; null: once.")
    invocation_id = serializers.CharField(help_text="The invocation of its next run.")


class InstanceDetailSerializer(InstanceSerializer):
    timers = serializers.SerializerMethodField(help_text="The key's armed timers (ctx.timer), by name.")

    class Meta(InstanceSerializer.Meta):
        fields = InstanceSerializer.Meta.fields + ["timers"]

    @extend_schema_field(TimerSerializer(many=True))
    def get_timers(self, instance: Instance) -> Any:
        return TimerSerializer(instance_timers(instance=instance), many=True).data


class AwaitingSerializer(serializers.Serializer):
    awakeables = serializers.ListField(child=serializers.CharField(), help_text="Ids of its awakeables not completed.")
    sleep_until = serializers.DateTimeField(allow_null=True, help_text="When its sleep ends; null: no sleep.")


class StateSerializer(serializers.Serializer):
    type = serializers.CharField()
    key = serializers.CharField()
    version = serializers.IntegerField()
    state = serializers.DictField(child=serializers.JSONField(), help_text="Entry name -> JSON value.")


class StrictSerializer(serializers.Serializer):
    """Refuses unknown fields: a misspelt field of a state edit must not become a silent no-op."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [f"Unknown field; expected one of: {', '.join(self.fields)}."] for name in unknown}
                )
        return super().to_internal_value(data)


class StateReplaceSerializer(StrictSerializer):
    version = serializers.IntegerField(min_value=0, help_text="The version you read; another one is 409.")
    state = serializers.DictField(child=serializers.JSONField(allow_null=True), allow_empty=True)


class StatePatchSerializer(StrictSerializer):
    version = serializers.IntegerField(min_value=0, required=False, help_text="When given, checked like PUT.")
    entries = serializers.DictField(child=serializers.JSONField(allow_null=True), required=False, default=dict)
    clear = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, default=list, max_length=1000
    )


class VersionSerializer(StrictSerializer):
    version = serializers.IntegerField(min_value=0, required=False, help_text="When given, a stale one is 409.")


class PauseSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class InvocationSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)
    type = serializers.CharField(source="type_name")

    class Meta:
        model = Invocation
        fields = [
            "id",
            "type",
            "key",
            "handler",
            "kind",
            "status",
            "attempts",
            "error_code",
            "idempotency_key",
            "not_before",
            "created_at",
            "started_at",
            "finished_at",
        ]


class JournalEntrySerializer(serializers.ModelSerializer):
    kind = serializers.CharField(help_text="run (ctx.run), sleep (ctx.sleep) or awakeable (ctx.awakeable).")

    class Meta:
        model = JournalEntry
        fields = ["index", "kind", "name", "result", "failure", "created_at"]


class InvocationDetailSerializer(InvocationSerializer):
    caller = serializers.SerializerMethodField(help_text="The invocation that called or sent this one.")
    caller_object = serializers.SerializerMethodField(
        help_text="The object whose handler called or sent this one, {type, key}; null when called from outside."
    )
    principal = serializers.JSONField(
        allow_null=True, read_only=True, help_text="The user it runs for, {id, username}; null when nobody signed in."
    )
    journal = JournalEntrySerializer(many=True, read_only=True)
    awaiting = serializers.SerializerMethodField(help_text="What a suspended invocation waits for; null otherwise.")
    input = serializers.JSONField(allow_null=True)
    output = serializers.JSONField(allow_null=True)

    class Meta(InvocationSerializer.Meta):
        fields = InvocationSerializer.Meta.fields + [
            "partition",
            "input",
            "output",
            "error_message",
            "error_type",
            "error_traceback",
            "kill_requested",
            "caller",
            "caller_object",
            "principal",
            "awaiting",
            "journal",
        ]

    @extend_schema_field(AwaitingSerializer(allow_null=True))
    def get_awaiting(self, invocation: Invocation) -> dict[str, Any] | None:
        awaiting = invocation_awaiting(invocation=invocation)
        return None if awaiting is None else AwaitingSerializer(awaiting).data

    def get_caller(self, invocation: Invocation) -> str | None:
        return invocation.caller.public_id if invocation.caller is not None else None

    def get_caller_object(self, invocation: Invocation) -> dict[str, str] | None:
        if not invocation.caller_type:
            return None
        return {"type": invocation.caller_type, "key": invocation.caller_key}

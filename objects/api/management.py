"""The management API (staff only): object types, instances and their state, invocations and their actions.

Views are thin: they parse, call one service or selector, and render. State edits go through
objects.services.state_edit, which takes the key's lock, so an edit queues behind a running handler.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import F
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

from .. import services
from ..errors import InvalidInput, NotFound
from ..models import Instance, Invocation, StateEntry, Status
from ..registry import all_objects, get_object
from ..selectors import instance_list_annotated
from .base import AppAPIView
from .body import StrictJSONParser
from .pagination import BoundedLimitOffsetPagination
from .refusals import retry_unless_refused
from .serializers import (
    InstanceDetailSerializer,
    InstanceSerializer,
    InvocationDetailSerializer,
    InvocationSerializer,
    ObjectTypeSerializer,
    PauseSerializer,
    StatePatchSerializer,
    StateReplaceSerializer,
    StateSerializer,
    VersionSerializer,
)

INSTANCE_ORDERINGS = ("key", "changed_at", "entry_count", "inbox_depth", "state_size", "id")


class StaffAPI(AppAPIView):
    """Shared settings of every management view (objects/api/base.py: none comes from REST_FRAMEWORK)."""

    parser_classes = [StrictJSONParser]
    pagination_class: type[BasePagination] | None = BoundedLimitOffsetPagination


def _query_text(request, name: str) -> str | None:
    """A text filter; NUL (which no stored value holds, and PostgreSQL refuses in a query) is a 400."""
    raw = request.query_params.get(name)
    if raw and "\x00" in raw:
        raise InvalidInput(f"Query parameter {name} must not contain NUL characters.")
    return raw or None


def _query_int(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"Query parameter {name} must be a whole number, got {raw[:40]!r}.") from None
    if not 0 <= value <= 2**62:
        raise InvalidInput(f"Query parameter {name} is out of range.")
    return value


def _query_time(request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise InvalidInput(f"Query parameter {name} must be an ISO-8601 date-time, got {raw[:40]!r}.")
    try:  # UTC, so that an exotic offset never reaches the database; a naive time is read as UTC
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise InvalidInput(f"Query parameter {name} is out of range.") from None


@extend_schema_view(
    list=extend_schema(summary="Registered object types with their handlers and input schemas"),
    retrieve=extend_schema(summary="One object type"),
)
class ObjectTypeViewSet(StaffAPI, viewsets.GenericViewSet):
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    serializer_class = ObjectTypeSerializer

    def get_queryset(self) -> Any:
        return all_objects()

    def list(self, request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ObjectTypeSerializer(page, many=True).data)

    def retrieve(self, request, name: str) -> Response:
        obj = get_object(name)
        if obj is None:
            known = ", ".join(o.name for o in all_objects()) or "none"
            raise NotFound(f"Unknown object type {name!r}; known types: {known}.")
        return Response(ObjectTypeSerializer(obj).data)


def _state_body(instance: Instance) -> dict[str, Any]:
    return {
        "type": instance.type_name,
        "key": instance.key,
        "version": instance.version,
        "state": dict(StateEntry.objects.filter(instance=instance).order_by("name").values_list("name", "value")),
    }


INSTANCE_FILTERS = [
    OpenApiParameter("type", str, description="Object type name (exact)."),
    OpenApiParameter("key", str, description="Key (exact)."),
    OpenApiParameter("key_prefix", str, description="Keys starting with this text."),
    OpenApiParameter("paused", bool, description="Only paused (true) or running (false) keys."),
    OpenApiParameter(
        "ordering",
        str,
        enum=[f"{sign}{name}" for name in INSTANCE_ORDERINGS for sign in ("", "-")],
        description="Sort field; prefix with - for descending. Default: -changed_at.",
    ),
]


@extend_schema_view(
    list=extend_schema(summary="Instances (keys), filterable and sortable", parameters=INSTANCE_FILTERS),
    retrieve=extend_schema(summary="One instance with counts and armed timers"),
)
class InstanceViewSet(StaffAPI, viewsets.ReadOnlyModelViewSet):
    serializer_class = InstanceSerializer
    queryset = Instance.objects.all()

    def get_serializer_class(self) -> Any:
        return InstanceDetailSerializer if self.action == "retrieve" else InstanceSerializer

    def get_queryset(self) -> Any:
        queryset = instance_list_annotated(Instance.objects.all())
        if self.action != "list":
            return queryset
        params = self.request.query_params
        for param, lookup in (("type", "type_name"), ("key", "key"), ("key_prefix", "key__startswith")):
            value = _query_text(self.request, param)
            if value:
                queryset = queryset.filter(**{lookup: value})
        paused = params.get("paused")
        if paused not in (None, ""):
            if paused.lower() not in ("true", "false", "1", "0"):
                raise InvalidInput("Query parameter paused must be true or false.")
            queryset = queryset.filter(paused=paused.lower() in ("true", "1"))
        ordering = params.get("ordering") or "-changed_at"
        if ordering.lstrip("-") not in INSTANCE_ORDERINGS:
            raise InvalidInput(f"Unknown ordering {ordering[:40]!r}; use one of {', '.join(INSTANCE_ORDERINGS)}.")
        nulls = {"nulls_last": True} if ordering.startswith("-") else {"nulls_first": True}
        field = ordering.lstrip("-")
        expression = F(field).desc(**nulls) if ordering.startswith("-") else F(field).asc(**nulls)
        return queryset.order_by(expression, "-id")

    def _instance(self) -> Instance:
        pk = self.kwargs["pk"]
        if not str(pk).isdigit() or int(pk) > 2**62:
            raise NotFound(f"No instance {str(pk)[:40]!r}: instance ids are whole numbers.")
        instance = Instance.objects.filter(pk=int(pk)).first()
        if instance is None:
            raise NotFound(f"No instance {pk}.")
        return instance

    def get_object(self) -> Instance:
        instance = self._instance()
        return instance_list_annotated(Instance.objects.filter(pk=instance.pk)).get()

    def _edit(self, instance: Instance, version: int | None, **changes: Any) -> Response:
        services.state_edit(
            type_name=instance.type_name,
            key=instance.key,
            expected_version=version,
            user_id=self.request.user.pk,
            **changes,
        )
        instance.refresh_from_db()
        return Response(_state_body(instance))

    @extend_schema(summary="The instance's state", responses=StateSerializer)
    @action(detail=True, methods=["get"], url_path="state")
    def state(self, request, pk: str) -> Response:
        return Response(_state_body(self._instance()))

    @extend_schema(
        summary="Replace the whole state; a stale version is 409",
        request=StateReplaceSerializer,
        responses=StateSerializer,
    )
    @state.mapping.put
    def state_replace(self, request, pk: str) -> Response:
        instance = self._instance()
        body = StateReplaceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        return self._edit(instance, data["version"], set_entries=data["state"], replace=True)

    @extend_schema(
        summary="Set and clear some entries (version optional)", request=StatePatchSerializer, responses=StateSerializer
    )
    @state.mapping.patch
    def state_patch(self, request, pk: str) -> Response:
        instance = self._instance()
        body = StatePatchSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        return self._edit(instance, data.get("version"), set_entries=data["entries"], clear=data["clear"])

    @extend_schema(
        summary="Clear all entries (version optional, as ?version=)",
        parameters=[OpenApiParameter("version", int, description="When given, a stale version is 409.")],
        responses=StateSerializer,
    )
    @state.mapping.delete
    def state_delete(self, request, pk: str) -> Response:
        return self._edit(self._instance(), _query_int(request, "version"), clear_all=True)

    @extend_schema(summary="Clear all entries", request=VersionSerializer, responses=StateSerializer)
    @action(detail=True, methods=["post"], url_path="clear")
    def state_clear(self, request, pk: str) -> Response:
        instance = self._instance()
        body = VersionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._edit(instance, body.validated_data.get("version"), clear_all=True)

    @extend_schema(
        summary="Clear one entry",
        operation_id="api_instances_state_entry_destroy",
        parameters=[
            OpenApiParameter("name", str, OpenApiParameter.PATH, description="Entry name."),
            OpenApiParameter("version", int, description="When given, a stale version is 409."),
        ],
        request=None,
        responses=StateSerializer,
    )
    @action(detail=True, methods=["delete"], url_path=r"state/(?P<name>.+)")
    def state_entry_delete(self, request, pk: str, name: str) -> Response:
        return self._edit(self._instance(), _query_int(request, "version"), clear=[name])

    @extend_schema(summary="Pause the key: its inbox holds until resumed", request=PauseSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk: str) -> Response:
        body = PauseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.instance_pause(instance=self._instance(), reason=body.validated_data["reason"])
        return Response(InstanceSerializer(self.get_object()).data)

    @extend_schema(summary="Resume the key: its inbox runs again", request=None)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk: str) -> Response:
        services.instance_resume(instance=self._instance())
        return Response(InstanceSerializer(self.get_object()).data)


INVOCATION_FILTERS = [
    OpenApiParameter("type", str, description="Object type name (exact)."),
    OpenApiParameter("key", str, description="Key (exact)."),
    OpenApiParameter("handler", str, description="Handler name (exact)."),
    OpenApiParameter("status", str, enum=list(Status.values), description="Status."),
    OpenApiParameter("instance", int, description="Instance id."),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME, description="Accepted at or after."),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME, description="Accepted before."),
]


@extend_schema_view(
    list=extend_schema(summary="Invocations, newest first, filterable", parameters=INVOCATION_FILTERS),
    retrieve=extend_schema(summary="One invocation with input, output, error, journal, caller and what it awaits"),
)
class InvocationViewSet(StaffAPI, viewsets.ReadOnlyModelViewSet):
    queryset = Invocation.objects.all()
    lookup_value_regex = "[^/]+"

    def get_serializer_class(self) -> Any:
        return InvocationSerializer if self.action == "list" else InvocationDetailSerializer

    def get_queryset(self) -> Any:
        queryset = Invocation.objects.order_by("-id")
        if self.action != "list":
            return queryset
        params = self.request.query_params
        for param, field in (("type", "type_name"), ("key", "key"), ("handler", "handler")):
            value = _query_text(self.request, param)
            if value:
                queryset = queryset.filter(**{field: value})
        status = params.get("status")
        if status:
            if status not in Status.values:
                raise InvalidInput(f"Unknown status {status[:40]!r}; use one of {', '.join(Status.values)}.")
            queryset = queryset.filter(status=status)
        instance = _query_int(self.request, "instance")
        if instance is not None:
            queryset = queryset.filter(instance_id=instance)
        after, before = _query_time(self.request, "created_after"), _query_time(self.request, "created_before")
        if after:
            queryset = queryset.filter(created_at__gte=after)
        if before:
            queryset = queryset.filter(created_at__lt=before)
        return queryset

    def get_object(self) -> Invocation:
        invocation = services.invocation_get(self.kwargs["pk"])
        return Invocation.objects.select_related("caller").prefetch_related("journal").get(pk=invocation.pk)

    def _act(self, operation: Any) -> Response:
        operation(invocation=self.get_object())
        return Response(InvocationDetailSerializer(self.get_object()).data)

    @extend_schema(summary="Cancel a pending, backing-off or suspended invocation (else 409)", request=None)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk: str) -> Response:
        return self._act(services.invocation_cancel)

    @extend_schema(summary="Kill an open invocation; a running one's effects are discarded", request=None)
    @action(detail=True, methods=["post"])
    def kill(self, request, pk: str) -> Response:
        return self._act(services.invocation_kill)

    @extend_schema(
        summary="Run a failed or backing-off invocation again (else 409; a handler's refusal, a 4xx, is 409 too)",
        request=None,
    )
    @action(detail=True, methods=["post"])
    def retry(self, request, pk: str) -> Response:
        return self._act(retry_unless_refused)

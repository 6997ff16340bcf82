"""OpenAPI: the management API as drf-spectacular sees it, plus one ingress path per registered handler.

The ingress is one catch-all view (it parses raw paths itself), so the generator adds a synthetic endpoint
per handler instead: `POST /{prefix}/{Type}/{key}/{handler}` and `.../send` with the handler's input schema
(a DRF serializer becomes a component; a dataclass, TypedDict or pydantic model becomes the inline JSON Schema
of the TypeAdapter that validates it), and the attach, output and health paths.
"""

from __future__ import annotations

import inspect
from typing import Any

from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.views import APIView

from .. import conf
from ..registry import Handler, all_objects
from .schemas import adapter_schema

ERROR = inline_serializer(
    "IngressError",
    {
        "code": serializers.IntegerField(),
        "message": serializers.CharField(),
        "source": serializers.ChoiceField(choices=["ingress", "invocation"]),
    },
)
ACCEPTED = inline_serializer(
    "SendAccepted",
    {
        "invocationId": serializers.CharField(),
        "status": serializers.CharField(help_text="Accepted or PreviouslyAccepted (a repeated idempotency key)."),
        "executionTime": serializers.DateTimeField(required=False),
    },
)
KEY = OpenApiParameter("key", str, OpenApiParameter.PATH, description="The key, percent-encoded as one segment.")
IDEMPOTENCY = OpenApiParameter("idempotency-key", str, OpenApiParameter.HEADER, description="Execute at most once.")
ERRORS = {code: OpenApiResponse(ERROR) for code in (400, 401, 403, 404, 405, 409, 413)}


class ObjectsAutoSchema(AutoSchema):
    """drf-spectacular's inspector, describing an operation by its own view's docstring only: a view without one
    does not inherit a base class's (StaffAPI's "Shared settings of every management view" is no description)."""

    def get_description(self) -> str:  # type: ignore[override]  # drf-spectacular's own annotation
        action = getattr(self.view, getattr(self.view, "action", self.method.lower()), None)
        action_doc = inspect.getdoc(action) if action is not None and getattr(action, "__doc__", None) else ""
        own = self.view.__class__.__dict__.get("__doc__")
        return (action_doc or (inspect.cleandoc(own) if own else "")).strip()


def _request_body(handler: Handler) -> Any:
    if not handler.takes_input:
        return None
    if handler.adapter is not None:
        return {"application/json": adapter_schema(handler.adapter)}
    if handler.input_type is None:
        return {"application/json": {}}
    return handler.input_type


def _endpoint(path: str, method: str, decorated: Any) -> tuple[str, str, str, Any]:
    view_class: Any = type("IngressDoc", (APIView,), {method.lower(): decorated})
    return (path, f"^{path}$", method, view_class.as_view())


def _doc(**kwargs: Any) -> Any:
    """extend_schema for a synthetic view method, on drf-spectacular's AutoSchema whatever the host's
    REST_FRAMEWORK DEFAULT_SCHEMA_CLASS says."""

    def wrap(method: Any) -> Any:
        method.schema = AutoSchema
        return extend_schema(**kwargs)(method)

    return wrap


def ingress_endpoints() -> list[tuple[str, str, str, Any]]:
    prefix = "/" + conf.get("OBJECTS_INGRESS_PREFIX").strip("/")
    endpoints = []
    for obj in all_objects():
        for handler in obj.handlers.values():
            base = f"{prefix}/{obj.name}/{{key}}/{handler.name}"
            common = dict(tags=[f"ingress: {obj.name}"], request=_request_body(handler), parameters=[KEY, IDEMPOTENCY])
            call = _doc(
                operation_id=f"ingress_{obj.name}_{handler.name}_call",
                summary=f"Call {obj.name}.{handler.name} ({handler.kind}) and wait for its output",
                responses={200: OpenApiResponse(description="The handler's output as raw JSON."), **ERRORS},
                **common,
            )(lambda self, request, key: None)
            send = _doc(
                operation_id=f"ingress_{obj.name}_{handler.name}_send",
                summary=f"Send to {obj.name}.{handler.name} without waiting",
                responses={202: ACCEPTED, **ERRORS},
                **{
                    **common,
                    "parameters": [
                        KEY,
                        IDEMPOTENCY,
                        OpenApiParameter("delay", str, description="500ms, 10s, PT1M or whole milliseconds."),
                    ],
                },
            )(lambda self, request, key: None)
            endpoints += [_endpoint(base, "POST", call), _endpoint(f"{base}/send", "POST", send)]
    for kind, summary in (("attach", "Wait for an invocation's result"), ("output", "The result now, 470 if running")):
        responses = {200: OpenApiResponse(description="The output, as the original call answered."), **ERRORS}
        if kind == "output":
            responses[470] = OpenApiResponse(ERROR, description="Not finished yet.")
        doc = _doc(
            operation_id=f"ingress_invocation_{kind}",
            summary=summary,
            tags=["ingress"],
            parameters=[OpenApiParameter("id", str, OpenApiParameter.PATH, description="inv_<hex>")],
            responses=responses,
        )(lambda self, request, id: None)
        endpoints.append(_endpoint(f"{prefix}/restate/invocation/{{id}}/{kind}", "GET", doc))
    health = _doc(
        operation_id="ingress_health", tags=["ingress"], auth=[], responses={200: OpenApiResponse(description="Up.")}
    )(lambda self, request: None)
    endpoints.append(_endpoint(f"{prefix}/restate/health", "GET", health))
    return endpoints


class ObjectsSchemaGenerator(SchemaGenerator):
    """Adds the ingress paths (see the module docstring) to the generated endpoints."""

    def _initialise_endpoints(self) -> None:
        if self.endpoints is None:
            super()._initialise_endpoints()
            self.endpoints = [*(self.endpoints or []), *ingress_endpoints()]  # type: ignore[list-item]  # 4-tuples

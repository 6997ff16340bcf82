"""The DRF settings of every management API view, set on the views rather than read from REST_FRAMEWORK: the
app's error shape, authentication, permissions, renderers and schema stay the same in any host."""

from __future__ import annotations

from typing import Any

from rest_framework.metadata import SimpleMetadata
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.views import APIView

from .errors import exception_handler
from .openapi import ObjectsAutoSchema
from .permissions import AUTHENTICATION_CLASSES, IsStaff


class AppAPIView(APIView):
    """The base (or first base, ahead of another APIView) of the app's API views."""

    authentication_classes = AUTHENTICATION_CLASSES
    permission_classes = [IsStaff]
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer]
    throttle_classes = []
    versioning_class = None
    content_negotiation_class = DefaultContentNegotiation
    metadata_class = SimpleMetadata
    schema: Any = ObjectsAutoSchema()

    def get_exception_handler(self) -> Any:
        return exception_handler

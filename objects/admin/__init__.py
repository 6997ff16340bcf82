"""The Django admin for virtual objects: instances (state, inbox, history), invocations, the overview page.

The overview is linked from the app's own admin pages (its app index and the instance list); the site's
index page stays the host's.
"""

from .instances import InstanceAdmin
from .invocations import InvocationAdmin

__all__ = ["InstanceAdmin", "InvocationAdmin"]

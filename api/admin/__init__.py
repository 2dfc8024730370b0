"""Admin and sales side (auth, lead lifecycle, monitoring, dashboard): registered by the app factory.

`route_handlers` and `middleware` are what this feature adds to the app; see api/app.py.
"""

from __future__ import annotations

from typing import Any

route_handlers: list[Any] = []
middleware: list[Any] = []

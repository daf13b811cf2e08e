"""What the simulator's endpoints share: JSON responses and the tokeniser behind its token counts
(the chat server and the files/batches endpoints alike)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

__all__ = ["TOKEN", "json_response"]

TOKEN = re.compile(r"\w+|[^\w\s]")


def json_response(
    status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> web.Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)

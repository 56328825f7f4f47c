"""The sheet registry loaded at start-up, as a request dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from renkei.sheets.registry import SheetRegistry


# Async: a sync dependency costs a thread-pool hop for an attribute read.
async def get_sheets(request: Request) -> SheetRegistry:
    return request.app.state.sheets


SheetsDep = Annotated[SheetRegistry, Depends(get_sheets)]

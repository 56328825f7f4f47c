"""The print kit (template renderer + form builder) as a request dependency, built on first use."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from renkei.printing.forms import FormBuilder
from renkei.printing.render import FormRenderer
from renkei.printing.service import PrintKit
from renkei.sheets.dependencies import SheetsDep


def get_print_kit(request: Request, sheets: SheetsDep) -> PrintKit:
    # Built lazily: WeasyPrint's font set-up costs time that an instance which never prints should not pay.
    kit = getattr(request.app.state, "print_kit", None)
    if kit is None or kit.builder.registry is not sheets:
        kit = PrintKit(FormRenderer(request.app.state.settings.forms_dir), FormBuilder(sheets))
        request.app.state.print_kit = kit
    return kit


PrintKitDep = Annotated[PrintKit, Depends(get_print_kit)]

"""Turn request validation errors into the API's field list (JSON pointer + Japanese + English)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from renkei.errors import FieldProblem

_JA = {
    "missing": "必須項目です",
    "extra_forbidden": "不明な項目です",
    "string_too_long": "{max_length}文字以内で入力してください",
    "string_too_short": "{min_length}文字以上で入力してください",
    "too_long": "{max_length}件以内にしてください",
    "too_short": "{min_length}件以上にしてください",
    "enum": "選択肢にない値です",
    "literal_error": "選択肢にない値です",
    "date_parsing": "日付の形式が正しくありません（YYYY-MM-DD）",
    "date_from_datetime_parsing": "日付の形式が正しくありません（YYYY-MM-DD）",
    "date_type": "日付の形式が正しくありません（YYYY-MM-DD）",
    "datetime_parsing": "日時の形式が正しくありません",
    "datetime_from_date_parsing": "日時の形式が正しくありません",
    "uuid_parsing": "IDの形式が正しくありません",
    "string_type": "文字列で入力してください",
    "int_parsing": "整数で入力してください",
    "int_type": "整数で入力してください",
    "bool_parsing": "はい/いいえで入力してください",
    "bool_type": "はい/いいえで入力してください",
    "greater_than_equal": "{ge}以上にしてください",
    "less_than_equal": "{le}以下にしてください",
    "string_pattern_mismatch": "形式が正しくありません",
    "value_error": "値が正しくありません",
    "json_invalid": "JSONの形式が正しくありません",
    "model_attributes_type": "オブジェクトで入力してください",
    "dict_type": "オブジェクトで入力してください",
    "list_type": "配列で入力してください",
}


def pointer(loc: Sequence[Any]) -> str:
    """('body', 'team', 0, 'role') -> '/team/0/role'; other locations keep their prefix ('/query/limit')."""
    parts = list(loc)
    if parts and parts[0] == "body":
        parts = parts[1:]
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def problems_from_errors(errors: Sequence[dict[str, Any]]) -> list[FieldProblem]:
    out: list[FieldProblem] = []
    for err in errors:
        kind = err.get("type", "")
        ctx = {k: v for k, v in (err.get("ctx") or {}).items() if isinstance(v, (int, float, str))}
        template = _JA.get(kind, "値が正しくありません")
        try:
            # A validator's own bilingual message (PydanticCustomError with `message_ja` in its context).
            ja = ctx["message_ja"] if isinstance(ctx.get("message_ja"), str) else template.format(**ctx)
        except (KeyError, IndexError):
            ja = "値が正しくありません"
        # Pydantic's English message may echo the input only in ctx, never in `msg` for these types;
        # we still drop `input` entirely so submitted values never reach an error body.
        out.append(FieldProblem(pointer(err.get("loc", ())), ja, str(err.get("msg", "Invalid value"))))
    return out

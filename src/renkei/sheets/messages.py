"""Japanese and English messages for JSON Schema validation failures, one per failing field."""

from __future__ import annotations

from typing import Any

from jsonschema.exceptions import ValidationError

from renkei.db import types as db_types

TYPE_NAMES = {
    "string": ("文字列", "a string"),
    "integer": ("整数", "an integer"),
    "number": ("数値", "a number"),
    "boolean": ("はい／いいえ", "true or false"),
    "object": ("項目のまとまり", "an object"),
    "array": ("一覧", "a list"),
    "null": ("空欄", "null"),
}

FORMAT_MESSAGES = {
    "date": ("日付の形式が正しくありません（YYYY-MM-DD）", "Invalid date (YYYY-MM-DD)"),
    "date-time": (
        "日時の形式が正しくありません（YYYY-MM-DDThh:mm:ss+09:00）",
        "Invalid date-time (YYYY-MM-DDThh:mm:ss+09:00)",
    ),
    "uuid": ("IDの形式が正しくありません", "Invalid id (UUID)"),
}

FALLBACK = ("入力内容が正しくありません", "Invalid value")

EARLIEST_YEAR, LATEST_YEAR = db_types.EARLIEST_YEAR, db_types.LATEST_YEAR


class DateOutOfRange(ValueError):
    """A well-formed date or date-time outside EARLIEST_YEAR..LATEST_YEAR."""


OUT_OF_RANGE = (f"{EARLIEST_YEAR}年から{LATEST_YEAR}年までの日付を入力してください",
                f"Must be a date between {EARLIEST_YEAR} and {LATEST_YEAR}")

# Which message wins when one field fails several keywords (lower is shown).
RANK = {
    keyword: rank
    for rank, keyword in enumerate(
        [
            "required",
            "additionalProperties",
            "unevaluatedProperties",
            "type",
            "enum",
            "const",
            "format",
            "pattern",
            "minLength",
            "maxLength",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "minItems",
            "maxItems",
            "uniqueItems",
        ]
    )
}


def of(error: ValidationError) -> tuple[str, str]:
    """Japanese and English message for one kind of validation failure."""
    value = error.validator_value
    n = _number(value)
    match error.validator:
        case "required":
            return "必須項目です", "This field is required"
        case "additionalProperties" | "unevaluatedProperties":
            return "不明な項目です", "Unknown field"
        case "enum" | "const":
            return "選択肢にない値です", "Not one of the allowed values"
        case "type":
            names = [TYPE_NAMES.get(t, (t, t)) for t in ([value] if isinstance(value, str) else value)]
            ja = "または".join(name[0] for name in names)
            en = " or ".join(name[1] for name in names)
            return f"{ja}で入力してください", f"Must be {en}"
        case "maxLength":
            return f"{n}文字以内で入力してください", f"Must be at most {n} characters"
        case "minLength":
            if value == 1:
                return "入力してください", "Must not be empty"
            return f"{n}文字以上で入力してください", f"Must be at least {n} characters"
        case "format":
            if isinstance(error.cause, DateOutOfRange):
                return OUT_OF_RANGE
            return FORMAT_MESSAGES.get(value, ("形式が正しくありません", "Invalid format"))
        case "pattern":
            return "入力形式が正しくありません", "Does not match the expected format"
        case "minimum":
            return f"{n}以上の値を入力してください", f"Must be at least {n}"
        case "maximum":
            return f"{n}以下の値を入力してください", f"Must be at most {n}"
        case "exclusiveMinimum":
            return f"{n}より大きい値を入力してください", f"Must be greater than {n}"
        case "exclusiveMaximum":
            return f"{n}より小さい値を入力してください", f"Must be less than {n}"
        case "minItems":
            return f"{n}件以上入力してください", f"Must have at least {n} items"
        case "maxItems":
            return f"{n}件以内で入力してください", f"Must have at most {n} items"
        case "uniqueItems":
            return "同じ値が重複しています", "Contains duplicate values"
        case _:
            return FALLBACK


def _number(value: Any) -> Any:
    """Show 25.0 as 25 in messages."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value

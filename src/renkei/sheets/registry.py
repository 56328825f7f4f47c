"""Registry of the standard sheets' JSON Schemas, loaded from schemas/<sheet-id>/<version>.json."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from renkei.sheets import messages, subtrees
from renkei.sheets.subtrees import Subtree

__all__ = ["FieldError", "SheetDef", "SheetRegistry", "SheetSchemaError"]

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_VERSION_FILE = re.compile(r"[1-9][0-9]*\.json")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.IGNORECASE,
)


class SheetSchemaError(RuntimeError):
    """A file under schemas/ cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class SheetDef:
    """One version of one standard sheet."""

    id: str
    version: int
    title: str
    title_en: str
    category: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class FieldError:
    """One failing field: a JSON pointer into the submitted data ("" is the root)."""

    path: str
    message_ja: str
    message_en: str


def _is_datetime(value: object) -> bool:
    """RFC 3339 date-time with a mandatory offset."""
    if not isinstance(value, str):
        return True
    if not _DATETIME.fullmatch(value):
        return False
    datetime.fromisoformat(value.upper())  # rejects impossible dates such as month 13
    return True


def _in_range(value: object) -> bool:
    """Raises DateOutOfRange for a (well-formed) date or date-time string outside the plausible years."""
    if isinstance(value, str) and not messages.EARLIEST_YEAR <= int(value[:4]) <= messages.LATEST_YEAR:
        raise messages.DateOutOfRange(value[:4])
    return True


def _format_checker() -> FormatChecker:
    """The 2020-12 format checker with date and date-time checks that need no optional extras and refuse
    implausible years (each with its own message, see messages.of)."""
    checker = FormatChecker(())
    checker.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
    is_date, date_raises = checker.checkers["date"]
    # Without rfc3339-validator installed jsonschema silently accepts any date-time string;
    # our own check behaves the same whichever extras are present.
    checker.checks("date-time", raises=ValueError)(lambda value: _is_datetime(value) and _in_range(value))
    checker.checks("date", raises=(ValueError, *_exceptions(date_raises)))(
        lambda value: bool(is_date(value)) and _in_range(value))
    return checker


def _exceptions(raises: type[Exception] | tuple[type[Exception], ...]) -> tuple[type[Exception], ...]:
    return raises if isinstance(raises, tuple) else (raises,)


_FORMAT_CHECKER = _format_checker()


class SheetRegistry:
    """Sheet definitions keyed by (id, version), each with a ready validator."""

    def __init__(
        self,
        sheets: dict[tuple[str, int], SheetDef],
        shared: dict[tuple[str, int], dict[str, Any]],
        resources: Registry,
    ) -> None:
        self._sheets = sheets
        self._shared = shared
        self._resources = resources
        self._validators = {
            key: Draft202012Validator(sheet.schema, registry=resources, format_checker=_FORMAT_CHECKER)
            for key, sheet in sheets.items()
        }
        resolvers = {key: resources.resolver(base_uri=sheet.schema["$id"]) for key, sheet in sheets.items()}
        self._subtrees = {key: subtrees.find(sheet.schema, resolvers[key]) for key, sheet in sheets.items()}
        self._entry_refs = {key: subtrees.annotated(sheet.schema, resolvers[key], "x-entry-sheet")
                            for key, sheet in sheets.items()}

    @classmethod
    def load(cls, directory: Path) -> SheetRegistry:
        """Load and check every schema file; raise SheetSchemaError on the first unusable one."""
        directory = Path(directory)
        if not directory.is_dir():
            raise SheetSchemaError(f"{directory}: schema directory not found")
        documents: list[tuple[Path, dict[str, Any]]] = []
        ids: dict[str, Path] = {}
        for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
            for file in sorted(folder.glob("*.json")):
                schema = _read_schema(file)
                schema_id = schema["$id"]
                if schema_id in ids:
                    raise SheetSchemaError(f"{file}: $id {schema_id!r} is already used by {ids[schema_id]}")
                ids[schema_id] = file
                documents.append((file, schema))

        resources = Registry().with_resources(
            (schema["$id"], DRAFT202012.create_resource(schema)) for _, schema in documents
        ).crawl()
        sheets: dict[tuple[str, int], SheetDef] = {}
        shared: dict[tuple[str, int], dict[str, Any]] = {}
        for file, schema in documents:
            resolver = resources.resolver(base_uri=schema["$id"])
            broken = next(_unresolvable_refs(resources[schema["$id"]], resolver), None)
            if broken is not None:
                raise SheetSchemaError(f"{file}: $ref {broken!r} cannot be resolved")
            version = int(file.stem)
            if file.parent.name.startswith("_"):
                # Folders such as _common hold shared $defs that sheets reference; they are not sheets.
                shared[(file.parent.name, version)] = schema
            else:
                sheets[(file.parent.name, version)] = _sheet_def(file, schema)
        return cls(sheets, shared, resources)

    def get(self, sheet_id: str, version: int) -> SheetDef:
        """The sheet definition, or KeyError if that id and version are unknown."""
        try:
            return self._sheets[(sheet_id, version)]
        except KeyError:
            raise KeyError(f"unknown sheet {sheet_id!r} version {version!r}") from None

    def latest(self, sheet_id: str) -> SheetDef:
        """The highest version of a sheet, or KeyError."""
        versions = [version for (known, version) in self._sheets if known == sheet_id]
        if not versions:
            raise KeyError(f"unknown sheet {sheet_id!r}")
        return self._sheets[(sheet_id, max(versions))]

    def all(self) -> list[SheetDef]:
        """Every sheet definition, sorted by id then version."""
        return [self._sheets[key] for key in sorted(self._sheets)]

    def shared(self, name: str, version: int) -> dict[str, Any]:
        """A shared definitions document such as ("_common", 1), for clients that follow $ref."""
        try:
            return self._shared[(name, version)]
        except KeyError:
            raise KeyError(f"unknown shared schema {name!r} version {version!r}") from None

    def subtrees(self, sheet_id: str, version: int) -> tuple[Subtree, ...]:
        """The parts of a sheet version with a consent category of their own (`x-category` on a property)."""
        try:
            return self._subtrees[(sheet_id, version)]
        except KeyError:
            raise KeyError(f"unknown sheet {sheet_id!r} version {version!r}") from None

    def entry_refs(self, sheet_id: str, version: int) -> tuple[tuple[str, str], ...]:
        """(pattern, sheet id) of the fields that refer to an entry of one sheet (`x-entry-sheet`)."""
        try:
            return self._entry_refs[(sheet_id, version)]
        except KeyError:
            raise KeyError(f"unknown sheet {sheet_id!r} version {version!r}") from None

    def validate(self, sheet_id: str, version: int, data: Any) -> list[FieldError]:
        """One error for every failing field, sorted by path; [] when the data is valid."""
        try:
            validator = self._validators[(sheet_id, version)]
        except KeyError:
            raise KeyError(f"unknown sheet {sheet_id!r} version {version!r}") from None
        # A field can fail several keywords at once (True for an enum is both "type" and "enum");
        # the form shows one message per field, so keep the most telling one.
        best: dict[str, tuple[int, FieldError]] = {}
        for error in validator.iter_errors(data):
            rank = messages.RANK.get(error.validator, len(messages.RANK))
            for field_error in _field_errors(error):
                if field_error.path not in best or rank < best[field_error.path][0]:
                    best[field_error.path] = (rank, field_error)
        return [best[path][1] for path in sorted(best, key=_pointer_sort_key)]

    def field_label(self, sheet_id: str, version: int, pointer: str) -> tuple[str, str]:
        """The (Japanese, English) title of the field a JSON pointer names; KeyError if none."""
        sheet = self.get(sheet_id, version)
        schema: Any = sheet.schema
        resolver = self._resources.resolver(base_uri=sheet.schema["$id"])
        labels = (sheet.title, sheet.title_en)
        for token in _pointer_tokens(pointer):
            schema, resolver = _follow_refs(schema, resolver)
            properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
            if token in properties:
                schema = properties[token]
            elif _is_index(token) and isinstance(schema, dict) and isinstance(schema.get("items"), dict):
                schema = schema["items"]
            else:
                raise KeyError(f"{sheet_id}/{version} has no field {pointer!r}")
            labels = _titles(schema, resolver) or labels
        return labels


def _read_schema(file: Path) -> dict[str, Any]:
    """Parse one schema file and check everything that does not need the other files."""
    try:
        schema = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SheetSchemaError(f"{file}: invalid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise SheetSchemaError(f"{file}: a schema file must hold a JSON object")
    if not _VERSION_FILE.fullmatch(file.name):
        raise SheetSchemaError(f"{file}: file name must be <version>.json with a positive integer version")
    if schema.get("$schema") != DIALECT:
        raise SheetSchemaError(f"{file}: $schema must be {DIALECT!r}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = _pointer(exc.absolute_path) or "/"
        raise SheetSchemaError(f"{file}: not a valid JSON Schema 2020-12 at {where}: {exc.message}") from exc
    # Relative $refs such as ../_common/1.json resolve against $id, so it must mirror the file layout.
    suffix = f"/{file.parent.name}/{file.name}"
    schema_id = schema.get("$id")
    if not isinstance(schema_id, str) or not urlsplit(schema_id).scheme or not schema_id.endswith(suffix):
        raise SheetSchemaError(f"{file}: $id must be an absolute URI ending in {suffix!r}")
    return schema


def _sheet_def(file: Path, schema: dict[str, Any]) -> SheetDef:
    """Build a SheetDef, checking that the x- annotations agree with the file's place."""
    sheet_id = schema.get("x-sheet-id")
    version = schema.get("x-version")
    if sheet_id is None:
        raise SheetSchemaError(f"{file}: missing x-sheet-id")
    if sheet_id != file.parent.name:
        raise SheetSchemaError(f"{file}: x-sheet-id {sheet_id!r} does not match folder {file.parent.name!r}")
    if version is None:
        raise SheetSchemaError(f"{file}: missing x-version")
    if type(version) is not int or version != int(file.stem):
        raise SheetSchemaError(f"{file}: x-version {version!r} does not match file name {file.name!r}")
    for key in ("title", "x-title-en", "x-category"):
        if not isinstance(schema.get(key), str) or not schema[key]:
            raise SheetSchemaError(f"{file}: missing {key}")
    return SheetDef(
        id=sheet_id,
        version=version,
        title=schema["title"],
        title_en=schema["x-title-en"],
        category=schema["x-category"],
        schema=schema,
    )


def _unresolvable_refs(resource: Resource[Any], resolver: Any) -> Iterator[str]:
    """Every $ref in a schema (at any depth) that does not resolve offline."""
    if isinstance(resource.contents, dict):
        ref = resource.contents.get("$ref")
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except Unresolvable:
                yield ref
    for subresource in resource.subresources():
        yield from _unresolvable_refs(subresource, resolver.in_subresource(subresource))


def _follow_refs(schema: Any, resolver: Any) -> tuple[Any, Any]:
    """Follow $ref until the schema itself declares properties or items."""
    while isinstance(schema, dict) and "$ref" in schema and not ("properties" in schema or "items" in schema):
        resolved = resolver.lookup(schema["$ref"])
        schema, resolver = resolved.contents, resolved.resolver
    return schema, resolver


def _titles(schema: Any, resolver: Any) -> tuple[str, str] | None:
    """The schema's own title pair, else the one of the schema it references."""
    while isinstance(schema, dict):
        if isinstance(schema.get("title"), str):
            return schema["title"], schema.get("x-title-en", schema["title"])
        if "$ref" not in schema:
            return None
        resolved = resolver.lookup(schema["$ref"])
        schema, resolver = resolved.contents, resolved.resolver
    return None


def _field_errors(error: ValidationError) -> Iterator[FieldError]:
    """Turn one jsonschema error into field errors that point at the offending field itself."""
    path = _pointer(error.absolute_path)
    ja, en = messages.of(error)
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if isinstance(custom, list) and len(custom) == 2:
        # A rule the generic wording would not explain (required by another field's choice): the schema's.
        ja, en = custom
    if error.validator == "required" and isinstance(error.instance, dict):
        # jsonschema reports a missing property at its parent; the form needs the field's own path.
        for name in error.validator_value:
            if name not in error.instance:
                yield FieldError(_child(path, name), ja, en)
    elif error.validator == "additionalProperties" and error.validator_value is False:
        for name in _extra_properties(error.instance, error.schema):
            yield FieldError(_child(path, name), ja, en)
    else:
        yield FieldError(path, ja, en)


def _extra_properties(instance: Any, schema: Any) -> list[str]:
    """Property names that neither properties nor patternProperties allow."""
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return []
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return [
        name
        for name in instance
        if name not in properties and not any(re.search(pattern, name) for pattern in patterns)
    ]


def _pointer(parts: Iterable[str | int]) -> str:
    """RFC 6901 JSON pointer from path parts."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _child(pointer: str, name: str) -> str:
    """Pointer to a named member of the value at pointer."""
    return pointer + _pointer([name])


def _pointer_tokens(pointer: str) -> list[str]:
    """Unescaped tokens of an RFC 6901 pointer; KeyError if it is malformed."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise KeyError(f"not a JSON pointer: {pointer!r}")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _is_index(token: str) -> bool:
    """True for an array index token (ASCII digits only)."""
    return token.isascii() and token.isdigit()


def _pointer_sort_key(pointer: str) -> Sequence[tuple[int, int, str]]:
    """Sort array indices numerically so /list/2 comes before /list/10."""
    return [
        (0, int(token), "") if _is_index(token) else (1, 0, token) for token in _pointer_tokens(pointer)
    ]

"""The streamll event as a pydantic v2 model, and a parser for messages read from a broker.

The fields, names and types are those of Python streamll's ``StreamllEvent``, plus the four fields the
TypeScript streamll adds (``schema_version``, ``span_id``, ``parent_span_id``, ``git_commit``). Every field the
event's JSON Schema (``@streamll/core/event.schema.json``) requires is required here too: streamll writes all
of them on every event, nullable ones as ``null``. Each field has the constraints ``decodeEvent`` checks
(``event-schema.ts``), so both accept and reject the same messages: ids of 8-64 URL-safe characters
(``[A-Za-z0-9_-]``), an ISO-8601 timestamp in UTC ending in ``Z`` on a date that exists, ``module_name`` 1-512
characters, ``event_type`` 1-128, ``method_name``, ``operation`` and ``module_version`` at most 512,
``code_signature`` and ``git_commit`` at most 128 (characters are code points, as zod counts them), ``data`` a
JSON object, ``tags`` an object of strings. Fields a later ``1.x`` version adds are kept, unchecked, as
``decodeEvent`` keeps them: ``event.model_extra`` holds them and ``model_dump()`` returns them with the others.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from datetime import datetime, timezone
from typing import Annotated, Any, Callable, Optional, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

#: The ``schema_version`` major this model reads; minor versions only add fields.
SUPPORTED_MAJOR = "1"
#: Messages larger than this (UTF-8 bytes) are rejected before parsing, as ``decodeEvent`` does by default (its
#: ``maxBytes``). Events written with ``configure({ encode: { maxEventBytes } })`` above it need a larger
#: ``max_bytes``.
DEFAULT_MAX_BYTES = 1_048_576
#: A lone surrogate as a character, or a ``\uD800``-``\uDFFF`` escape that may decode to one.
_MAYBE_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")
# The patterns of event-schema.ts, matched whole (fullmatch) with ASCII digits only, as JavaScript reads them.
_VERSION = re.compile(r"[0-9]+\.[0-9]+")
_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_TIMESTAMP = re.compile(
    r"([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(?:\.([0-9]{1,9}))?Z"
)


def _text(min_length: int, max_length: int) -> AfterValidator:
    def check(value: str) -> str:
        # Characters are code points, as zod counts them (a lone surrogate is one, as U+FFFD is).
        if len(value) < min_length:
            raise ValueError("must not be empty")
        if len(value) > max_length:
            raise ValueError(f"at most {max_length} characters")
        return value

    return AfterValidator(check)


def _pattern(pattern: re.Pattern[str], message: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _utc_timestamp(value: Any) -> Any:
    """An ISO-8601 UTC timestamp ending in ``Z``, every field in range, on a date that exists, as an aware
    ``datetime`` (fractions beyond microseconds are cut). Year 0000, which streamll writes only for clamped
    times and ``datetime`` cannot hold, reads as ``datetime.min`` in UTC. An aware ``datetime`` in UTC passes."""
    if isinstance(value, datetime):
        if value.utcoffset() is None or value.utcoffset().total_seconds() != 0:
            raise ValueError("must be an ISO-8601 UTC timestamp ending in Z")
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string")
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        raise ValueError("must be an ISO-8601 UTC timestamp ending in Z")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    if day > _days_in_month(year, month):
        raise ValueError("must be a date that exists (no February 30)")
    if year == 0:
        return datetime.min.replace(tzinfo=timezone.utc)
    micro = int((match.group(7) or "").ljust(6, "0")[:6])
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone.utc)


Id = Annotated[str, _pattern(_ID, "must be a URL-safe id of 8-64 characters ([A-Za-z0-9_-])")]
Name = Annotated[str, _text(0, 512)]


class StreamllEvent(BaseModel):
    """One streamll event (``schema_version`` 1.x), with the constraints ``decodeEvent`` checks."""

    # strict: no conversions (a number is not a string); extra fields (later 1.x versions) are kept as they are.
    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    schema_version: Annotated[str, _pattern(_VERSION, "must look like 1.0")]
    event_id: Id
    execution_id: Id
    span_id: Id
    parent_span_id: Optional[Id]
    timestamp: Annotated[datetime, BeforeValidator(_utc_timestamp)]
    module_name: Annotated[str, _text(1, 512)]
    method_name: Name
    event_type: Annotated[str, _text(1, 128)]
    operation: Optional[Name]
    data: dict[str, Any]
    tags: dict[str, str]
    module_version: Optional[Name]
    code_signature: Optional[Annotated[str, _text(0, 128)]]
    git_commit: Optional[Annotated[str, _text(0, 128)]]


class InvalidEvent(ValueError):
    """A message is not a streamll event this model reads. The message never contains the input."""


def _describe(error: ValidationError) -> str:
    # include_input=False: pydantic's default message quotes the offending value, which may be sensitive.
    issues = error.errors(include_input=False, include_url=False)
    first = issues[0]
    path = ".".join(str(part) for part in first["loc"]) or "(event)"
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"{path}: {first['msg']}{more}"


def _reject_constant(_name: str) -> Any:
    # NaN, Infinity and -Infinity are not JSON: json.loads accepts them, JSON.parse (so decodeEvent) does not.
    raise InvalidEvent("not valid JSON (NaN or Infinity)")


class _OutOfRange(float):
    """A JSON number past a double's range (1e400), which JavaScript reads as Infinity: decodeEvent rejects it
    in ``data`` and in every field it types, and keeps it (as Infinity) in a field it does not know."""


def _holds_out_of_range(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_out_of_range(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_out_of_range(item) for item in value)
    return isinstance(value, _OutOfRange)


def _as_infinity(value: Any) -> Any:
    """``value`` with each out-of-range number as the plain ``float`` infinity JavaScript holds for it."""
    if isinstance(value, dict):
        return {key: _as_infinity(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_infinity(item) for item in value]
    return float(value) if isinstance(value, _OutOfRange) else value


def _well_formed(value: Any) -> Any:
    """``value`` with each lone surrogate in its strings and keys replaced by U+FFFD (pairs are kept)."""
    if isinstance(value, str):
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, dict):
        return {_well_formed(key): _well_formed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_well_formed(item) for item in value]
    return value


def tolerant_stdout() -> None:
    """Makes ``print()`` escape what stdout cannot encode instead of raising: output never stops a reader."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")


def parse_event(raw: Union[bytes, str, None], max_bytes: int = DEFAULT_MAX_BYTES) -> StreamllEvent:
    """Decodes and validates one message body (a Kafka value, a Redis field, a RabbitMQ body, a JSONL line).

    Accepts and rejects what ``decodeEvent`` does: ``NaN`` and ``Infinity`` are not JSON, a number out of a
    double's range is Infinity in JavaScript (rejected in ``data``, kept as ``inf`` in a field the model does not
    know). Lone surrogates become U+FFFD. A message larger than ``max_bytes`` (UTF-8 bytes; 1 MiB by default, as
    ``decodeEvent``'s) is rejected: pass the ``maxEventBytes`` your producers are configured with when it is
    larger. Raises :class:`InvalidEvent` with a reason that names the problem but never quotes the input.
    """
    if raw is None:
        raise InvalidEvent("empty message")
    if isinstance(raw, str):
        text = raw
        if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
            raise InvalidEvent(f"larger than {max_bytes} bytes")
    else:
        if len(raw) > max_bytes:
            raise InvalidEvent(f"{len(raw)} bytes, larger than {max_bytes}")
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent("not valid UTF-8") from None
    out_of_range = False

    def number(convert: Callable[[str], Any]) -> Callable[[str], Any]:
        # JavaScript reads every JSON number as a double: one past its range (1e400) is Infinity there.
        def parse(literal: str) -> Any:
            nonlocal out_of_range
            as_float = float(literal)  # float() first also keeps int() off 4,300+ digit literals
            if math.isinf(as_float):
                out_of_range = True
                return _OutOfRange(as_float)
            return convert(literal)

        return parse

    try:
        value = json.loads(
            text.removeprefix("\ufeff"),
            parse_constant=_reject_constant,
            parse_float=number(float),
            parse_int=number(int),
        )
        # A "\ud800" escape decodes to a lone surrogate, which decodeEvent accepts but Python cannot
        # encode: print() would raise UnicodeEncodeError. It becomes U+FFFD, as streamll's encoder writes it.
        if _MAYBE_SURROGATE.search(text):
            value = _well_formed(value)
    except json.JSONDecodeError as error:
        raise InvalidEvent(f"not valid JSON ({error.msg} at position {error.pos})") from None
    except RecursionError:
        raise InvalidEvent("not valid JSON (nested too deeply)") from None
    if not isinstance(value, dict):
        # A bare number past a double's range is read as the marker: name what it is, not the marker's type.
        kind = "number" if isinstance(value, _OutOfRange) else type(value).__name__
        raise InvalidEvent(f"not a JSON object ({kind})")
    if out_of_range:
        if _holds_out_of_range(value.get("data")):
            raise InvalidEvent("data: a number is out of range (not a finite double)")
        value = _as_infinity(value)  # a typed field still rejects it: no field of the model is a number
    version = value.get("schema_version")
    # As decodeEvent: a MAJOR.MINOR whose major is not exactly "1" ("01.0" included) is another major.
    if isinstance(version, str) and _VERSION.fullmatch(version) and version.split(".")[0] != SUPPORTED_MAJOR:
        raise InvalidEvent(f"unsupported schema_version major (this model reads {SUPPORTED_MAJOR}.x)")
    try:
        return StreamllEvent.model_validate(value)
    except ValidationError as error:
        raise InvalidEvent(_describe(error)) from None

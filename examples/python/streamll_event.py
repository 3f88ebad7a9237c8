"""The streamll event as a pydantic v2 model, and a parser for messages read from a broker.

The fields, names and types are those of Python streamll's ``StreamllEvent``, plus the four fields the
TypeScript streamll adds (``schema_version``, ``span_id``, ``parent_span_id``, ``git_commit``). Every field the
event's JSON Schema (``@streamll/core/event.schema.json``) requires is required here too: streamll writes all
of them on every event, nullable ones as ``null``. Fields a later ``1.x`` version adds are ignored.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from typing import Annotated, Any, Optional, Union

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, ValidationError

#: The ``schema_version`` major this model reads; minor versions only add fields.
SUPPORTED_MAJOR = 1
#: Messages larger than this (UTF-8 bytes) are rejected before parsing, as ``decodeEvent`` does.
DEFAULT_MAX_BYTES = 1_048_576
#: A lone surrogate as a character, or a ``\uD800``-``\uDFFF`` escape that may decode to one.
_MAYBE_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")


class StreamllEvent(BaseModel):
    """One streamll event (``schema_version`` 1.x)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+$")]
    event_id: str
    execution_id: str
    span_id: str
    parent_span_id: Optional[str]
    timestamp: AwareDatetime
    module_name: str
    method_name: str
    event_type: str
    operation: Optional[str]
    data: dict[str, Any]
    tags: dict[str, str]
    module_version: Optional[str]
    code_signature: Optional[str]
    git_commit: Optional[str]


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


def _finite(text: str) -> float:
    # JavaScript reads every JSON number as a double: one past its range (1e400) is Infinity there, which
    # decodeEvent rejects, and which json.dumps would write back as the non-JSON literal Infinity.
    value = float(text)
    if math.isinf(value):
        raise InvalidEvent("a number is out of range (not a finite double)")
    return value


def _finite_int(text: str) -> int:
    _finite(text)  # also keeps int() off the 4,300+ digit strings it raises ValueError for
    return int(text)


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

    Rejects what ``decodeEvent`` rejects (NaN, Infinity and numbers out of a double's range included); lone
    surrogates become U+FFFD. Raises :class:`InvalidEvent` with a reason that names the problem but never
    quotes the input.
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
    try:
        value = json.loads(
            text.removeprefix("\ufeff"),
            parse_constant=_reject_constant,
            parse_float=_finite,
            parse_int=_finite_int,
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
        raise InvalidEvent(f"not a JSON object ({type(value).__name__})")
    version = value.get("schema_version")
    if isinstance(version, str) and version.partition(".")[0].isdigit():
        if int(version.partition(".")[0]) != SUPPORTED_MAJOR:
            raise InvalidEvent(f"unsupported schema_version major (this model reads {SUPPORTED_MAJOR}.x)")
    try:
        return StreamllEvent.model_validate(value)
    except ValidationError as error:
        raise InvalidEvent(_describe(error)) from None

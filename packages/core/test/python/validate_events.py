"""Validates streamll events (one JSON object per line) the way Python consumers do: with Python streamll's own
pydantic model, and with the JSON Schema that @streamll/core ships. Prints a JSON report on stdout.

    python validate_events.py EVENTS.jsonl EVENT_SCHEMA.json
"""

import json
import sys
from datetime import datetime
from typing import Any, Optional

from jsonschema import Draft202012Validator
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError


class StreamllEvent(BaseModel):
    """Python streamll's event model, field for field (pydantic v2): extra fields are ignored. Fields without a
    default there are required here too, so a missing field fails."""

    model_config = ConfigDict(extra="ignore")

    event_id: str
    execution_id: str
    timestamp: AwareDatetime
    module_name: str = "unknown"
    method_name: str = "forward"
    module_version: Optional[str]
    code_signature: Optional[str]
    event_type: str
    operation: Optional[str]
    data: dict[str, Any]
    tags: dict[str, str]


def main() -> None:
    events_path, schema_path = sys.argv[1], sys.argv[2]
    with open(schema_path, encoding="utf-8") as file:
        schema = json.load(file)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    report: dict[str, Any] = {"count": 0, "event_types": [], "pydantic_failures": [], "schema_failures": []}
    with open(events_path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            report["count"] += 1
            value = json.loads(line)
            if value.get("event_type") not in report["event_types"]:
                report["event_types"].append(value.get("event_type"))
            try:
                event = StreamllEvent.model_validate(value)
                assert isinstance(event.timestamp, datetime) and event.timestamp.tzinfo is not None
            except ValidationError as error:
                issues = error.errors(include_input=False, include_url=False)
                report["pydantic_failures"].append({"line": number, "issues": issues})
            errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
            if errors:
                report["schema_failures"].append(
                    {"line": number, "issues": [f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors]}
                )
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    main()

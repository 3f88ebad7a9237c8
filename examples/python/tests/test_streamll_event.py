"""The model accepts every kind of event streamll writes and agrees with the event's JSON Schema.

Events come from ``STREAMLL_EVENTS_FILE`` (the repository's test suite writes one event of every kind there)
or, when it is not set, from ``tests/events.jsonl``. The JSON Schema comes from ``STREAMLL_EVENT_SCHEMA`` or
``@streamll/core``'s built ``dist/event.schema.json`` in this repository; without it the tests that need it skip,
and with ``CI=true`` they fail instead.
"""

import json
import os
import unittest
from datetime import datetime, timezone
from pathlib import Path

from jsonschema import Draft202012Validator

from streamll_event import InvalidEvent, StreamllEvent, parse_event

HERE = Path(__file__).resolve().parent
EVENTS_FILE = Path(os.environ.get("STREAMLL_EVENTS_FILE") or HERE / "events.jsonl")
SCHEMA_FILE = Path(
    os.environ.get("STREAMLL_EVENT_SCHEMA") or HERE.parents[2] / "packages/core/dist/event.schema.json"
)
BUILTIN_KINDS = {"start", "end", "error", "token", "retry", "version"}


def load_events() -> list[bytes]:
    return [line for line in EVENTS_FILE.read_bytes().splitlines() if line.strip()]


def load_schema() -> dict:
    if not SCHEMA_FILE.exists():
        reason = f"{SCHEMA_FILE} not found: build @streamll/core or set STREAMLL_EVENT_SCHEMA"
        if os.environ.get("CI") == "true":
            raise AssertionError(f"{reason} (CI=true: not skipped)")
        raise unittest.SkipTest(reason)
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def nullable(prop: dict) -> bool:
    types = prop.get("type", [])
    if "null" in (types if isinstance(types, list) else [types]):
        return True
    return any(nullable(option) for option in prop.get("anyOf", []) + prop.get("oneOf", []))


class StreamllEventModelTest(unittest.TestCase):
    def test_accepts_every_event_kind(self) -> None:
        events = [parse_event(line) for line in load_events()]
        kinds = {event.event_type for event in events}
        self.assertLessEqual(BUILTIN_KINDS, kinds)
        self.assertTrue(kinds - BUILTIN_KINDS, "no custom emit() event in the sample")
        self.assertTrue(all(event.timestamp.tzinfo is not None for event in events))
        self.assertTrue(any(event.code_signature for event in events), "no event with version tracking on")
        self.assertTrue(
            any(event.parent_span_id is None and event.event_type not in BUILTIN_KINDS for event in events)
        )

    def test_required_fields_are_the_json_schemas(self) -> None:
        schema = load_schema()
        required = {name for name, info in StreamllEvent.model_fields.items() if info.is_required()}
        self.assertEqual(required, set(schema["required"]))
        self.assertEqual(set(StreamllEvent.model_fields), set(schema["properties"]))

    def test_nullable_fields_are_the_json_schemas(self) -> None:
        schema = load_schema()
        sample = json.loads(load_events()[0])
        for name, prop in schema["properties"].items():
            with self.subTest(field=name):
                try:
                    StreamllEvent.model_validate({**sample, name: None})
                    accepts_null = True
                except ValueError:
                    accepts_null = False
                self.assertEqual(accepts_null, nullable(prop))

    def test_agrees_with_the_json_schema(self) -> None:
        validator = Draft202012Validator(load_schema())
        for line in load_events():
            value = json.loads(line)
            self.assertEqual(list(validator.iter_errors(value)), [])
            parse_event(line)
        broken = {**json.loads(load_events()[0]), "timestamp": "yesterday"}
        self.assertTrue(list(validator.iter_errors(broken)))
        with self.assertRaises(InvalidEvent):
            parse_event(json.dumps(broken))

    def test_keeps_fields_of_later_minor_versions(self) -> None:
        # events.md: consumers accept any 1.x and keep fields they do not know, as decodeEvent does.
        value = {**json.loads(load_events()[0]), "schema_version": "1.1", "cost": {"usd": 0.1}, "region": "eu"}
        event = parse_event(json.dumps(value))
        self.assertEqual(event.model_extra, {"cost": {"usd": 0.1}, "region": "eu"})
        dumped = event.model_dump(mode="json")
        self.assertEqual(parse_event(json.dumps(dumped)).timestamp, event.timestamp)  # written to the microsecond
        self.assertEqual({**dumped, "timestamp": value["timestamp"]}, value)  # round-trips, nothing lost
        self.assertEqual({**json.loads(event.model_dump_json()), "timestamp": value["timestamp"]}, value)
        self.assertEqual(parse_event(event.model_dump_json()), event)
        # Unchecked, whatever their type; a known field keeps its check.
        self.assertEqual(parse_event(json.dumps({**value, "cost": None})).model_extra["cost"], None)
        with self.assertRaises(InvalidEvent):
            parse_event(json.dumps({**value, "tags": {"k": 1}}))

    def test_rejects_what_is_not_an_event_without_quoting_it(self) -> None:
        secret = "sk-live-0123456789abcdef"
        sample = json.loads(load_events()[0])
        cases = {
            "method_name null": json.dumps({**sample, "method_name": None, "data": {"key": secret}}),
            "naive timestamp": json.dumps(
                {**sample, "timestamp": "2026-01-01T00:00:00", "tags": {"k": secret}}
            ),
            "tag not a string": json.dumps({**sample, "tags": {"k": 1}, "data": {"key": secret}}),
            "missing span_id": json.dumps(
                {k: v for k, v in sample.items() if k != "span_id"} | {"data": {"k": secret}}
            ),
            "major version 2": json.dumps({**sample, "schema_version": "2.0", "data": {"key": secret}}),
            "not JSON": f'{{"data": "{secret}"',
            "not an object": json.dumps([secret]),
            "not UTF-8": b"\xff\xfe" + secret.encode(),
            "empty": None,
            "too large": json.dumps({**sample, "data": {"blob": "x" * 2_000_000, "key": secret}}),
        }
        for name, raw in cases.items():
            with self.subTest(case=name):
                with self.assertRaises(InvalidEvent) as caught:
                    parse_event(raw)
                self.assertNotIn(secret, str(caught.exception))
                self.assertNotIn("sk-live", str(caught.exception))

    def test_rejects_each_field_decode_event_rejects(self) -> None:
        # Each of these passed the model although decodeEvent and the JSON Schema reject it, so Python readers
        # rebuilt other trees than reconstructExecution (an injected bad event turned a span into an error).
        sample = json.loads(load_events()[0])
        cases = {
            "module_name empty": {"module_name": ""},
            "module_name 513 characters": {"module_name": "x" * 513},
            "event_type empty": {"event_type": ""},
            "event_type 129 characters": {"event_type": "e" * 129},
            "timestamp +02:00": {"timestamp": "2026-01-01T00:00:00.000+02:00"},
            "timestamp +00:00": {"timestamp": "2026-01-01T00:00:00.000+00:00"},
            "timestamp February 30": {"timestamp": "2026-02-30T00:00:00.000Z"},
            "timestamp 10 fraction digits": {"timestamp": "2026-01-01T00:00:00.1234567890Z"},
            "timestamp trailing newline": {"timestamp": "2026-01-01T00:00:00.000Z\n"},
            "timestamp a number": {"timestamp": 1767225600000},
            "event_id 3 characters": {"event_id": "abc"},
            "event_id not URL-safe": {"event_id": "abc def ghi!"},
            "event_id 65 characters": {"event_id": "a" * 65},
            "event_id trailing newline": {"event_id": "abcdefgh\n"},
            "event_id non-ASCII digits": {"event_id": "\u0661" * 8},
            "execution_id 7 characters": {"execution_id": "a" * 7},
            "span_id not URL-safe": {"span_id": "span.0001"},
            "parent_span_id not URL-safe": {"parent_span_id": "abc def ghi!"},
            "operation 513 characters": {"operation": "o" * 513},
            "method_name 513 characters": {"method_name": "m" * 513},
            "module_version 513 characters": {"module_version": "v" * 513},
            "code_signature 129 characters": {"code_signature": "c" * 129},
            "git_commit 129 characters": {"git_commit": "g" * 129},
            "schema_version 01.0": {"schema_version": "01.0"},
            "schema_version non-ASCII digits": {"schema_version": "\u0661.0"},
            "event_type a boolean": {"event_type": True},
            "module_name a number": {"module_name": 5},
        }
        for name, change in cases.items():
            with self.subTest(case=name):
                with self.assertRaises(InvalidEvent):
                    parse_event(json.dumps({**sample, **change}))
        # The edges that pass, in decodeEvent too.
        for change in (
            {"module_name": "x" * 512, "method_name": "", "operation": "", "code_signature": "c" * 128},
            {"module_name": "\U0001f600" * 512},  # 512 characters (1,024 UTF-16 code units): zod counts characters
            {"event_id": "a-b_C9zZ", "span_id": "s" * 64, "parent_span_id": None},
            {"timestamp": "2026-01-01T00:00:00Z", "schema_version": "1.12"},
            {"timestamp": "2024-02-29T23:59:59.123456789Z", "tags": {"k" * 200: "v" * 2000}},
        ):
            with self.subTest(accepts=sorted(change)):
                parse_event(json.dumps({**sample, **change}))

    def test_timestamps_read_as_utc_datetimes(self) -> None:
        sample = json.loads(load_events()[0])
        event = parse_event(json.dumps({**sample, "timestamp": "2024-02-29T23:59:59.123456789Z"}))
        self.assertEqual(event.timestamp, datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=timezone.utc))
        # Year 0000 passes decodeEvent; datetime cannot hold it, so it reads as the earliest datetime.
        event = parse_event(json.dumps({**sample, "timestamp": "0000-02-29T12:00:00.000Z"}))
        self.assertEqual(event.timestamp, datetime.min.replace(tzinfo=timezone.utc))

    def test_lone_surrogates_become_replacement_characters(self) -> None:
        # decodeEvent accepts "\ud800" escapes; Python cannot encode the lone surrogate they decode to, so
        # print() raised UnicodeEncodeError and stopped every reader. Pairs stay the character they encode.
        sample = json.loads(load_events()[0])
        value = {
            **sample,
            "module_name": "X\ud800Y",
            "tags": {"k\udfff": "\ud83d\ude00 \udc00"},
            "data": {"nested": [{"lone": "\ud800"}]},
        }
        for raw in (json.dumps(value), json.dumps(value).encode()):
            with self.subTest(raw=type(raw).__name__):
                event = parse_event(raw)
                self.assertEqual(event.module_name, "X\ufffdY")
                self.assertEqual(event.tags, {"k\ufffd": "\U0001f600 \ufffd"})
                self.assertEqual(event.data["nested"], [{"lone": "\ufffd"}])
                event.model_dump_json().encode("utf-8")  # strict: raises on a lone surrogate

    def test_rejects_nan_infinity_and_numbers_out_of_range_as_decode_event_does(self) -> None:
        text = load_events()[0].decode()
        for literal in ("NaN", "Infinity", "-Infinity"):  # not JSON, wherever they are
            with self.subTest(literal=literal):
                with self.assertRaises(InvalidEvent):
                    parse_event(text[:-1] + f', "extra": {{"v": {literal}}}}}')
        sample = json.loads(text)
        for literal in ("1e400", "-1e400", "9" * 400, "1" + "0" * 5000):  # Infinity in JavaScript
            with self.subTest(literal=literal[:12]):
                with self.assertRaises(InvalidEvent):  # in data: decodeEvent rejects it
                    data = json.dumps({**sample, "data": {"v": [1, {"w": "<n>"}]}})
                    parse_event(data.replace('"<n>"', literal))
                with self.assertRaises(InvalidEvent):  # in a typed field
                    parse_event(json.dumps({**sample, "tags": {"k": "<n>"}}).replace('"<n>"', literal))
                # In a field neither knows (a later minor version's): both keep it, as Infinity (JSON.stringify
                # and model_dump_json write it as null).
                event = parse_event(text[:-1] + f', "extra": {{"v": {literal}}}}}')
                self.assertEqual(event.event_id, sample["event_id"])
                self.assertEqual(event.model_extra, {"extra": {"v": float(literal)}})
                self.assertIs(type(event.model_extra["extra"]["v"]), float)
                self.assertEqual(json.loads(event.model_dump_json())["extra"], {"v": None})
        event = parse_event(json.dumps({**json.loads(text), "data": {"v": 1.5e308, "n": 2**63}}))
        self.assertEqual(event.data, {"v": 1.5e308, "n": 2**63})
        # A message that is only such a number: named as a number, never by an internal type name.
        with self.assertRaisesRegex(InvalidEvent, r"^not a JSON object \(number\)$"):
            parse_event("1e400")


if __name__ == "__main__":
    unittest.main()

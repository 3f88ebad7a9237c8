"""parse_event accepts and rejects exactly what TypeScript's decodeEvent does, on one corpus of good and bad
messages.

Every message goes through ``decodeEvent`` of the built ``@streamll/core`` (``packages/core/dist``, or
``STREAMLL_CORE_DIST``) in Node (``STREAMLL_NODE``, else ``node`` on PATH) and through ``parse_event``; the two
decisions must be the same for each. Without Node or the built package the test skips, and with ``CI=true`` it
fails instead: CI builds before it tests.
"""

import base64
import json
import os
import shutil
import subprocess
import unittest
from pathlib import Path

from streamll_event import InvalidEvent, parse_event

HERE = Path(__file__).resolve().parent
EVENTS_FILE = Path(os.environ.get("STREAMLL_EVENTS_FILE") or HERE / "events.jsonl")
CORE_DIST = Path(os.environ.get("STREAMLL_CORE_DIST") or HERE.parents[2] / "packages/core/dist/index.js")

# Reads base64 messages (one per line) on stdin, writes one JSON line per message: [ok, message].
DECODE = """
import { createInterface } from "node:readline";
const { decodeEvent } = await import(process.argv[1]);
for await (const line of createInterface({ input: process.stdin })) {
  const result = decodeEvent(Buffer.from(line, "base64"));
  console.log(JSON.stringify(result.ok ? [true, ""] : [false, result.error.message]));
}
"""


def unavailable(reason: str) -> None:
    """Skips the test, or fails it with CI=true (where a missing dependency is a broken build, not a skip)."""
    if os.environ.get("CI") == "true":
        raise AssertionError(f"{reason} (CI=true: not skipped)")
    raise unittest.SkipTest(reason)


def decode_event(messages: list[bytes]) -> list[tuple[bool, str]]:
    node = os.environ.get("STREAMLL_NODE") or shutil.which("node")
    if node is None:
        unavailable("node not found: set STREAMLL_NODE or put node on PATH")
    if not CORE_DIST.exists():
        unavailable(f"{CORE_DIST} not found: build @streamll/core or set STREAMLL_CORE_DIST")
    stdin = "".join(base64.b64encode(message).decode() + "\n" for message in messages)
    result = subprocess.run(
        [node, "--input-type=module", "-e", DECODE, CORE_DIST.as_uri()],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [tuple(json.loads(line)) for line in result.stdout.splitlines()]


def corpus() -> dict[str, bytes]:
    """Named messages: every sample event, and mutations of one at each edge of the schema."""
    lines = [line for line in EVENTS_FILE.read_bytes().splitlines() if line.strip()]
    sample = json.loads(lines[0])
    cases: dict[str, bytes] = {f"sample {i}": line for i, line in enumerate(lines)}

    def with_(name: str, **fields) -> None:
        cases[name] = json.dumps({**sample, **fields}).encode()

    def without(name: str, field: str) -> None:
        cases[name] = json.dumps({k: v for k, v in sample.items() if k != field}).encode()

    def with_number(name: str, literal: str, **fields) -> None:
        # The literal replaces the placeholder string: json.dumps cannot write a number past a double's range.
        cases[name] = json.dumps({**sample, **fields}).replace('"<number>"', literal).encode()

    emoji = "\U0001f600"  # one character (code point), two UTF-16 code units: zod counts it as one
    # Names: lengths in characters.
    with_("module_name empty", module_name="")
    with_("module_name 1", module_name="x")
    with_("module_name 512", module_name="x" * 512)
    with_("module_name 513", module_name="x" * 513)
    with_("module_name 512 emoji", module_name=emoji * 512)
    with_("module_name 513 emoji", module_name=emoji * 513)
    with_("module_name 512 accented", module_name="\u00e9" * 512)
    with_("module_name lone surrogates", module_name="\ud800" * 512)
    with_("module_name number", module_name=5)
    with_("method_name empty", method_name="")
    with_("method_name 512", method_name="m" * 512)
    with_("method_name 513", method_name="m" * 513)
    with_("method_name null", method_name=None)
    with_("event_type empty", event_type="")
    with_("event_type custom", event_type="my custom event!")
    with_("event_type 128", event_type="e" * 128)
    with_("event_type 129", event_type="e" * 129)
    with_("event_type 128 emoji", event_type=emoji * 128)
    with_("event_type 129 emoji", event_type=emoji * 129)
    with_("event_type bool", event_type=True)
    with_("operation null", operation=None)
    with_("operation empty", operation="")
    with_("operation 512", operation="o" * 512)
    with_("operation 513", operation="o" * 513)
    with_("operation number", operation=5)
    with_("module_version 512", module_version="v" * 512)
    with_("module_version 513", module_version="v" * 513)
    with_("module_version false", module_version=False)
    with_("code_signature 128", code_signature="c" * 128)
    with_("code_signature 129", code_signature="c" * 129)
    with_("code_signature 128 emoji", code_signature=emoji * 128)
    with_("code_signature 129 emoji", code_signature=emoji * 129)
    with_("git_commit 128", git_commit="g" * 128)
    with_("git_commit 129", git_commit="g" * 129)
    # Ids: 8-64 URL-safe characters.
    for field in ("event_id", "execution_id", "span_id", "parent_span_id"):
        with_(f"{field} 3", **{field: "abc"})
        with_(f"{field} 7", **{field: "a" * 7})
        with_(f"{field} 8", **{field: "a-b_C9zZ"})
        with_(f"{field} 64", **{field: "a" * 64})
        with_(f"{field} 65", **{field: "a" * 65})
        with_(f"{field} spaces and !", **{field: "abc def ghi!"})
        with_(f"{field} dot", **{field: "abcd.efgh"})
        with_(f"{field} accented letter", **{field: "abcd\u00e9fgh"})
        with_(f"{field} Arabic digits", **{field: "\u0661" * 8})
        with_(f"{field} trailing newline", **{field: "abcdefgh\n"})
        with_(f"{field} number", **{field: 123456789})
        with_(f"{field} null", **{field: None})
        without(f"{field} missing", field)
    # Timestamps: UTC, ending in Z, every field in range, a date that exists.
    for name, timestamp in {
        "ms": "2026-01-01T00:00:00.000Z",
        "no fraction": "2026-01-01T00:00:00Z",
        "1 digit": "2026-01-01T00:00:00.5Z",
        "9 digits": "2026-01-01T00:00:00.123456789Z",
        "10 digits": "2026-01-01T00:00:00.1234567890Z",
        "+02:00": "2026-01-01T00:00:00.000+02:00",
        "+00:00": "2026-01-01T00:00:00.000+00:00",
        "naive": "2026-01-01T00:00:00.000",
        "lowercase z": "2026-01-01T00:00:00.000z",
        "lowercase t": "2026-01-01t00:00:00.000Z",
        "space": "2026-01-01 00:00:00.000Z",
        "date only": "2026-01-01",
        "no seconds": "2026-01-01T00:00Z",
        "month 13": "2026-13-01T00:00:00.000Z",
        "month 00": "2026-00-01T00:00:00.000Z",
        "day 00": "2026-01-00T00:00:00.000Z",
        "day 32": "2026-01-32T00:00:00.000Z",
        "hour 24": "2026-01-01T24:00:00.000Z",
        "minute 60": "2026-01-01T00:60:00.000Z",
        "leap second": "2016-12-31T23:59:60.000Z",
        "February 30": "2026-02-30T00:00:00.000Z",
        "February 29 2026": "2026-02-29T00:00:00.000Z",
        "February 29 2024": "2024-02-29T00:00:00.000Z",
        "February 29 1900": "1900-02-29T00:00:00.000Z",
        "February 29 2000": "2000-02-29T00:00:00.000Z",
        "April 31": "2026-04-31T00:00:00.000Z",
        "year 0000": "0000-01-01T00:00:00.000Z",
        "February 29 0000": "0000-02-29T00:00:00.000Z",
        "year 9999": "9999-12-31T23:59:59.999Z",
        "5-digit year": "+12026-01-01T00:00:00.000Z",
        "Arabic digits": "\u0662\u0660\u0662\u0666-01-01T00:00:00.000Z",
        "trailing newline": "2026-01-01T00:00:00.000Z\n",
        "yesterday": "yesterday",
        "number": 1767225600000,
        "null": None,
    }.items():
        with_(f"timestamp {name}", timestamp=timestamp)
    # schema_version: any 1.x; another major, or not MAJOR.MINOR, is rejected.
    for version in ("1.0", "1.7", "1.10", "2.0", "0.9", "01.0", "1", "1.", "1.0.0", "v1.0", "1.0\n", "\u0661.0"):
        with_(f"schema_version {version!r}", schema_version=version)
    with_("schema_version number", schema_version=1.0)
    without("schema_version missing", "schema_version")
    # data and tags: an object of any JSON; an object of strings (no length limits).
    with_("data empty", data={})
    with_("data nested", data={"a": [1, 2.5, -0.0, None, True, {"b": "c"}], "big": 2**63, "tiny": 5e-324})
    with_("data 256 levels", data={"deep": json.loads("[" * 256 + "]" * 256)})
    with_("data array", data=[1])
    with_("data null", data=None)
    with_("data string", data="x")
    with_("tags empty", tags={})
    with_("tags long key and value", tags={"k" * 129: "v" * 1025})
    with_("tags empty key and value", tags={"": ""})
    with_("tags number value", tags={"k": 1})
    with_("tags null value", tags={"k": None})
    with_("tags nested", tags={"k": {"v": "w"}})
    with_("tags array", tags=["k"])
    with_("tags null", tags=None)
    without("tags missing", "tags")
    without("git_commit missing", "git_commit")
    without("operation missing", "operation")
    with_("unknown field", cost_usd={"x": 1}, later=[1, None])
    # Whole messages.
    text = json.dumps(sample)
    cases["BOM"] = b"\xef\xbb\xbf" + text.encode()
    cases["two BOMs"] = b"\xef\xbb\xbf\xef\xbb\xbf" + text.encode()
    cases["surrounding whitespace"] = b" \t\r\n" + text.encode() + b"\n "
    cases["duplicate key, last valid"] = text[:-1].encode() + b', "event_type": "end"}'
    cases["duplicate key, last invalid"] = text[:-1].encode() + b', "event_type": ""}'
    cases["NaN"] = text[:-1].encode() + b', "x": NaN}'
    # A number past a double's range is Infinity in JavaScript: rejected where the schema types it.
    cases["1e400 in an unknown field"] = text[:-1].encode() + b', "x": {"y": [1e400]}}'
    with_number("-1e400 in data", "-1e400", data={"a": [0, {"b": "<number>"}]})
    with_number("400 digits in data", "9" * 400, data={"a": "<number>"})
    with_number("1e308 in data", "1e308", data={"a": "<number>"})
    with_number("1e400 as a tag", "1e400", tags={"k": "<number>"})
    with_number("1e400 as timestamp", "1e400", timestamp="<number>")
    cases["not JSON"] = text[:-1].encode()
    cases["not UTF-8"] = b"\xff" + text.encode()
    cases["array"] = b"[" + text.encode() + b"]"
    cases["null"] = b"null"
    cases["string"] = b'"x"'
    cases["empty"] = b""
    return cases


class DecodeEventAgreementTest(unittest.TestCase):
    def test_parse_event_decides_as_decode_event_does(self) -> None:
        cases = corpus()
        decisions = decode_event(list(cases.values()))
        self.assertEqual(len(decisions), len(cases))
        disagreements = []
        accepted = rejected = 0
        for (name, message), (ts_ok, ts_reason) in zip(cases.items(), decisions):
            try:
                parse_event(message)
                py_ok, py_reason = True, ""
            except InvalidEvent as error:
                py_ok, py_reason = False, str(error)
            accepted += ts_ok
            rejected += not ts_ok
            if py_ok != ts_ok:
                disagreements.append(
                    f"{name}: decodeEvent {ts_ok} ({ts_reason}), parse_event {py_ok} ({py_reason})"
                )
        self.assertEqual(disagreements, [])
        # The corpus really has both kinds.
        self.assertGreater(accepted, 40)
        self.assertGreater(rejected, 100)


if __name__ == "__main__":
    unittest.main()

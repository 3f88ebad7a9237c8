"""Rebuilds streamll executions from a Kafka topic and prints them as trees.

Consumes a topic in a consumer group, validates every message with the ``StreamllEvent`` model (invalid ones are
skipped, counted and logged without their content), groups the events by ``execution_id`` and rebuilds each
execution when its top-level call has ended: the span tree with durations, status and errors, the text streamed
per output field, and token usage per module (from ``data.usage``).

    python rebuild_execution.py --bootstrap-servers localhost:9092 --topic streamll_events \\
        --group-id streamll-rebuild --stop-at-end
    python rebuild_execution.py --bootstrap-servers localhost:9092 --group-id streamll-lookup --no-commit \\
        --execution-id kq3x9Zt0aB1c

Events may arrive in any order: an execution is printed once its top-level call has ended, every span read has
both its start and its end, and ``--grace`` seconds passed without a new event for it (a late straggler is
counted, not printed). Offsets are committed by hand, and only up to the first event of the oldest execution
not yet printed, so a consumer that crashes or is stopped re-reads every execution it had not finished
(at-least-once: one printed just before a crash may be printed again).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional, Union

from streamll_event import InvalidEvent, StreamllEvent, parse_event, tolerant_stdout

log = logging.getLogger("streamll.rebuild")

COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
#: Events that belong to a span's life; any other type is an emit()-style event (``version`` precedes ``start``).
LIFECYCLE = ("start", "end", "error", "token", "retry", "version")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UNSET: Any = object()


# ---------------------------------------------------------------------------------------------------------------
# Rebuilding one execution from its events


@dataclass
class SpanError:
    type: str
    message: str
    code: Union[str, int, float, None] = None
    stack: Optional[str] = None


@dataclass
class Usage:
    """Token counts of model requests, as ``data.usage`` reports them."""

    model: str
    provider: Optional[str] = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def from_data(cls, value: Any) -> Optional[Usage]:
        if not isinstance(value, dict):
            return None
        counts = {key: _count(value.get(key)) for key in COUNTS}
        if value.get("total_tokens") is None:
            counts["total_tokens"] = counts["prompt_tokens"] + counts["completion_tokens"]
        model = value.get("model")
        provider = value.get("provider")
        return cls(
            model=model if isinstance(model, str) and model else "unknown",
            provider=provider if isinstance(provider, str) else None,
            **counts,
        )


@dataclass
class Span:
    """One module call or ``trace()`` block."""

    span_id: str
    parent_span_id: Optional[str]
    module_name: str
    method_name: str
    operation: Optional[str]
    module_version: Optional[str]
    started_at: datetime
    ended_at: Optional[datetime] = None
    duration_ms: Optional[float] = None
    status: str = "running"  # "ok", "error" or "running"
    started: bool = False
    error: Optional[SpanError] = None
    inputs: Any = _UNSET
    outputs: Any = _UNSET
    streamed_text: dict[str, str] = field(default_factory=dict)
    token_count: int = 0
    #: ``data.usage`` of the span's end (or error) event, as reported.
    usage: Optional[Usage] = None
    #: The span's own share of the execution's usage (see ``own_usage``); ``None`` when it has none.
    own_usage: Optional[Usage] = None
    custom_events: list[StreamllEvent] = field(default_factory=list)
    children: list[Span] = field(default_factory=list)

    @property
    def is_point(self) -> bool:
        """An emit() outside any span: custom events only, no start, no tokens, no children."""
        return not self.started and self.token_count == 0 and not self.children and self.status == "running"

    @property
    def label(self) -> str:
        qualified = f"{self.module_name}.{self.method_name}"
        return f"{self.operation} ({qualified})" if self.operation else qualified


@dataclass
class Execution:
    execution_id: str
    #: The events, de-duplicated by ``event_id`` and ordered by timestamp (then as read).
    events: list[StreamllEvent]
    #: Spans without a (known) parent: normally exactly one, the top-level call.
    roots: list[Span]
    spans: dict[str, Span]
    #: Spans that ended with an error, in the order their errors were emitted.
    errors: list[Span]
    started_at: Optional[datetime]
    ended_at: Optional[datetime]
    duration_ms: Optional[float]

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def complete(self) -> bool:
        """Every top-level span ended, or is a single event emitted outside any span."""
        return bool(self.roots) and all(span.status != "running" or span.is_point for span in self.roots)

    def usage_by_module(self) -> dict[str, dict[str, Any]]:
        """Token usage per module: the sum of each span's own share (``own_usage``)."""
        totals: dict[str, dict[str, Any]] = {}
        for span in self.spans.values():
            if span.own_usage is None:
                continue
            entry = totals.setdefault(span.module_name, {"calls": 0, "models": [], **{k: 0 for k in COUNTS}})
            entry["calls"] += 1
            for key in COUNTS:
                entry[key] += getattr(span.own_usage, key)
            if span.own_usage.model not in entry["models"]:
                entry["models"].append(span.own_usage.model)
        return totals


def _millis(moment: datetime) -> int:
    # Whole milliseconds, as JavaScript's Date.parse reads the timestamps: orders events like the TypeScript
    # replay (reconstructExecution) does.
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def _count(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None and number >= 0 else 0


def _finish(span: Span, event: StreamllEvent) -> None:
    span.ended_at = event.timestamp
    duration = _number(event.data.get("duration_ms"))
    if duration is None:
        duration = max(0, _millis(event.timestamp) - _millis(span.started_at))
    span.duration_ms = duration
    usage = Usage.from_data(event.data.get("usage"))
    if usage is not None:
        span.usage = usage


def _nearest_with_usage(spans: list[Span]) -> list[Span]:
    found: list[Span] = []
    for span in spans:
        found.extend([span] if span.usage is not None else _nearest_with_usage(span.children))
    return found


def _own_usage(span: Span) -> Optional[Usage]:
    """A span's usage counts its model requests and those of the calls nested in it. Its own share is its usage
    less that of the nearest nested spans reporting usage; when a count is smaller than theirs, the span counted
    only its own requests, and all of it is its own."""
    if span.usage is None:
        return None
    nested = _nearest_with_usage(span.children)
    sums = {key: sum(getattr(n.usage, key) for n in nested) for key in COUNTS}
    if not nested or any(getattr(span.usage, key) < sums[key] for key in COUNTS):
        return span.usage
    rest = Usage(
        span.usage.model, span.usage.provider, **{k: getattr(span.usage, k) - sums[k] for k in COUNTS}
    )
    return rest if any(getattr(rest, key) for key in COUNTS) else None


def rebuild(execution_id: str, events: Iterable[StreamllEvent]) -> Execution:
    """Rebuilds one execution from its events, in any order and with duplicates (delivery is at-least-once).

    The same algorithm as ``reconstructExecution`` in ``@streamll/sink-kafka``, plus token usage.
    """
    seen: set[str] = set()
    kept: list[StreamllEvent] = []
    for event in events:
        if event.execution_id == execution_id and event.event_id not in seen:
            seen.add(event.event_id)
            kept.append(event)
    # A stable sort: events of the same millisecond keep the order they were read in (partition order).
    ordered = sorted(kept, key=lambda event: _millis(event.timestamp))

    spans: dict[str, Span] = {}
    tokens: dict[str, dict[str, list[tuple[float, int, str]]]] = {}
    for order, event in enumerate(ordered):
        span = spans.get(event.span_id)
        if span is None:
            span = Span(
                span_id=event.span_id,
                parent_span_id=event.parent_span_id,
                module_name=event.module_name,
                method_name=event.method_name,
                operation=event.operation,
                module_version=event.module_version,
                started_at=event.timestamp,
            )
            spans[event.span_id] = span
            tokens[event.span_id] = {}
        data = event.data
        kind = event.event_type
        if kind == "start":
            span.started = True
            span.started_at = event.timestamp
            if "inputs" in data:
                span.inputs = data["inputs"]
        elif kind == "end":
            _finish(span, event)
            span.status = "ok"
            if "outputs" in data:
                span.outputs = data["outputs"]
        elif kind == "error":
            _finish(span, event)
            span.status = "error"
            code = data.get("error_code")
            stack = data.get("stack")
            span.error = SpanError(
                type=data["error_type"] if isinstance(data.get("error_type"), str) else "Error",
                message=data["error_message"] if isinstance(data.get("error_message"), str) else "",
                code=code if isinstance(code, (str, int, float)) and not isinstance(code, bool) else None,
                stack=stack if isinstance(stack, str) else None,
            )
        elif kind == "token":
            name = data["field"] if isinstance(data.get("field"), str) else "output"
            text = data["token"] if isinstance(data.get("token"), str) else ""
            index = _number(data.get("token_index"))
            tokens[event.span_id].setdefault(name, []).append(
                (float("inf") if index is None else index, order, text)
            )
        elif kind == "retry":
            # The stream started over: what it produced so far was discarded by the program too.
            tokens[event.span_id].clear()
            span.custom_events.append(event)
        else:
            span.custom_events.append(event)

    roots: list[Span] = []
    for span in spans.values():
        for name, chunks in tokens[span.span_id].items():
            chunks.sort(key=lambda chunk: (chunk[0], chunk[1]))
            span.streamed_text[name] = "".join(chunk[2] for chunk in chunks)
            span.token_count += len(chunks)
        parent = spans.get(span.parent_span_id) if span.parent_span_id is not None else None
        if parent is None or parent is span:
            roots.append(span)
        else:
            parent.children.append(span)
    roots.sort(key=lambda span: _millis(span.started_at))
    for span in spans.values():
        span.children.sort(key=lambda child: _millis(child.started_at))
    for span in spans.values():
        span.own_usage = _own_usage(span)

    errors: list[Span] = []
    for event in ordered:
        span = spans[event.span_id]
        if event.event_type == "error" and span.error is not None and span not in errors:
            errors.append(span)

    first = ordered[0].timestamp if ordered else None
    last = ordered[-1].timestamp if ordered else None
    duration: Optional[float] = None
    if len(roots) == 1 and roots[0].duration_ms is not None:
        duration = roots[0].duration_ms
    elif first is not None and last is not None:
        duration = max(0, _millis(last) - _millis(first))
    return Execution(execution_id, ordered, roots, spans, errors, first, last, duration)


# ---------------------------------------------------------------------------------------------------------------
# Output


def _iso(moment: Optional[datetime]) -> Optional[str]:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _usage_dict(usage: Optional[Usage]) -> Optional[dict[str, Any]]:
    return (
        None
        if usage is None
        else {"model": usage.model, "provider": usage.provider, **{k: getattr(usage, k) for k in COUNTS}}
    )


def span_to_dict(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "module_name": span.module_name,
        "method_name": span.method_name,
        "operation": span.operation,
        "module_version": span.module_version,
        "started_at": _iso(span.started_at),
        "ended_at": _iso(span.ended_at),
        "duration_ms": span.duration_ms,
        "status": span.status,
        "error": None if span.error is None else {k: v for k, v in vars(span.error).items() if v is not None},
        "streamed_text": span.streamed_text,
        "token_count": span.token_count,
        "usage": _usage_dict(span.usage),
        "own_usage": _usage_dict(span.own_usage),
        "custom_events": [{"event_type": e.event_type, "data": e.data} for e in span.custom_events],
        "children": [span_to_dict(child) for child in span.children],
    }
    if span.inputs is not _UNSET:
        out["inputs"] = span.inputs
    if span.outputs is not _UNSET:
        out["outputs"] = span.outputs
    return out


def execution_to_dict(execution: Execution) -> dict[str, Any]:
    return {
        "execution_id": execution.execution_id,
        "complete": execution.complete,
        "failed": execution.failed,
        "started_at": _iso(execution.started_at),
        "ended_at": _iso(execution.ended_at),
        "duration_ms": execution.duration_ms,
        "event_count": len(execution.events),
        "roots": [span_to_dict(root) for root in execution.roots],
        "errors": [
            {"span_id": span.span_id, "type": span.error.type, "message": span.error.message}
            for span in execution.errors
            if span.error
        ],
        "usage_by_module": execution.usage_by_module(),
    }


def _tokens(usage: Usage) -> str:
    counts = f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion"
    return f"{usage.total_tokens} tokens ({counts}, {usage.model})"


def render(execution: Execution) -> str:
    """The execution as an indented tree, one line per span, with its streamed text, events and usage."""
    if any(root.status == "error" for root in execution.roots):
        status = "FAILED"
    else:
        status = "ok" if execution.complete else "running"
    duration = "" if execution.duration_ms is None else f", {execution.duration_ms:.1f} ms"
    errors = f", {len(execution.errors)} failed span(s)" if execution.errors else ""
    lines = [f"execution {execution.execution_id}: {status}{duration}, {len(execution.spans)} spans{errors}"]

    def visit(span: Span, depth: int) -> None:
        pad = "  " * (depth + 1)
        if span.is_point:
            state = "event outside any span"
        else:
            state = (
                f"{span.status}, {'running' if span.duration_ms is None else f'{span.duration_ms:.1f} ms'}"
            )
        line = f"{pad}{span.label} [{state}]"
        if span.error is not None:
            line += f" {span.error.type}: {span.error.message}"
        lines.append(line)
        if span.usage is not None:
            lines.append(f"{pad}  usage: {_tokens(span.usage)}")
        for name, text in span.streamed_text.items():
            lines.append(f"{pad}  streamed {name}: {json.dumps(text, ensure_ascii=False)}")
        for event in span.custom_events:
            data = json.dumps(event.data, ensure_ascii=False, sort_keys=True)
            lines.append(f"{pad}  {event.event_type} {data if len(data) <= 160 else data[:159] + '…'}")
        for child in span.children:
            visit(child, depth + 1)

    for root in execution.roots:
        visit(root, 0)
    usage = execution.usage_by_module()
    if usage:
        lines.append("  tokens by module:")
        for module, entry in sorted(usage.items()):
            counts = f"{entry['prompt_tokens']} prompt + {entry['completion_tokens']} completion"
            models = ", ".join(entry["models"])
            lines.append(
                f"    {module}: {entry['total_tokens']} tokens ({counts}) in {entry['calls']} call(s), {models}"
            )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Collecting executions from a stream of messages


@dataclass
class Stats:
    messages: int = 0
    events: int = 0
    invalid: int = 0
    duplicates: int = 0
    #: Events of executions already printed (or dropped), arriving later.
    late: int = 0
    #: Unfinished executions dropped to stay within ``max_pending``.
    evicted: int = 0
    completed: int = 0
    incomplete: int = 0

    def summary(self) -> str:
        return ", ".join(f"{value} {name}" for name, value in vars(self).items())


class _Pending:
    __slots__ = ("events", "ids", "started", "ended", "open", "root_ended", "positions")

    def __init__(self) -> None:
        self.events: list[StreamllEvent] = []
        self.ids: set[str] = set()
        self.started: set[str] = set()
        self.ended: set[str] = set()
        #: Spans read (or named as a parent) whose start or end has not been read yet.
        self.open: set[str] = set()
        self.root_ended = False
        #: First offset of this execution's events per partition: nothing before it may be committed.
        self.positions: dict[int, int] = {}


class ExecutionCollector:
    """Groups events by execution and hands each execution over once it is whole: its top-level call (the span
    without a parent) has ended, and every span read has both its start and its end, whatever the order they
    came in. Events of a span not read at all yet cannot be waited for by that rule (the top-level call's start
    and end may come first): a whole execution is handed over only after ``grace`` seconds without a new event
    for it (0: at once); later ones are counted as late. Keeps at most ``max_pending`` unfinished executions
    (beyond that the oldest is handed over if whole, else dropped and counted)."""

    def __init__(
        self,
        on_execution: Callable[[Execution], None],
        only: Optional[str] = None,
        max_pending: int = 10_000,
        grace: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.on_execution = on_execution
        self.only = only
        self.max_pending = max_pending
        self.grace = grace
        self.clock = clock
        self.pending: OrderedDict[str, _Pending] = OrderedDict()
        #: Whole executions waiting out ``grace``, by when they became whole (the oldest first).
        self.whole: OrderedDict[str, float] = OrderedDict()
        self.finished: OrderedDict[str, None] = OrderedDict()
        self.next_offset: dict[int, int] = {}
        self.stats = Stats()

    def add(self, raw: Union[bytes, str, None], partition: int, offset: int, where: str) -> None:
        """Handles one message: validates it, files its event, and hands over what has waited out ``grace``."""
        self.stats.messages += 1
        self.next_offset[partition] = offset + 1
        try:
            event = parse_event(raw)
        except InvalidEvent as error:
            self.stats.invalid += 1
            log.warning("skipped invalid message at %s: %s", where, error)
            return
        self.stats.events += 1
        if self.only is not None and event.execution_id != self.only:
            return
        if event.execution_id in self.finished:
            self.stats.late += 1
            return
        pending = self.pending.get(event.execution_id)
        if pending is None:
            pending = self.pending[event.execution_id] = _Pending()
            if len(self.pending) > self.max_pending:
                oldest = next(iter(self.pending))
                if oldest in self.whole:
                    self._hand_over(oldest)
                else:
                    del self.pending[oldest]
                    self._finish(oldest)
                    self.stats.evicted += 1
                    log.warning(
                        "dropped unfinished execution %s: more than %d pending", oldest, self.max_pending
                    )
        if event.event_id in pending.ids:
            self.stats.duplicates += 1
            return
        pending.ids.add(event.event_id)
        pending.events.append(event)
        pending.positions.setdefault(partition, offset)
        if event.event_type == "start":
            pending.started.add(event.span_id)
        elif event.event_type in ("end", "error"):
            pending.ended.add(event.span_id)
            # The top-level call's end, read before or after its start.
            pending.root_ended = pending.root_ended or event.parent_span_id is None
        # A span stays open until both its start and its end are read (an end may come first), and so does a
        # parent a child names: its own events may not have been read yet.
        for span_id in (event.span_id if event.event_type in LIFECYCLE else None, event.parent_span_id):
            if span_id is None:
                continue
            if span_id in pending.started and span_id in pending.ended:
                pending.open.discard(span_id)
            else:
                pending.open.add(span_id)
        # An event outside any span (emit() with no span around it) is an execution of its own, already whole.
        point = event.parent_span_id is None and event.event_type not in LIFECYCLE
        self.whole.pop(event.execution_id, None)  # a new event restarts the wait
        if not pending.open and (pending.root_ended or (point and len(pending.events) == 1)):
            self.whole[event.execution_id] = self.clock()
        self.flush()

    def flush(self, wait: bool = True) -> None:
        """Hands over the whole executions that have waited ``grace`` seconds (every one, with ``wait=False``:
        when reading stops). Reading Kafka calls it between messages too."""
        deadline = self.clock() - self.grace
        while self.whole:
            execution_id, since = next(iter(self.whole.items()))
            if wait and since > deadline:
                break
            self._hand_over(execution_id)

    def _hand_over(self, execution_id: str) -> None:
        self.whole.pop(execution_id, None)
        pending = self.pending.pop(execution_id)
        self._finish(execution_id)
        self.stats.completed += 1
        self.on_execution(rebuild(execution_id, pending.events))

    def _finish(self, execution_id: str) -> None:
        self.finished[execution_id] = None
        if len(self.finished) > 100_000:
            self.finished.popitem(last=False)

    def unfinished(self) -> list[Execution]:
        """What is left: executions not whole (a span's start or end, or the top-level call's, was not read)."""
        return [rebuild(execution_id, pending.events) for execution_id, pending in self.pending.items()]

    def committable(self) -> dict[int, int]:
        """Per partition, the offset to commit: before the first event of any execution still pending."""
        positions = dict(self.next_offset)
        for pending in self.pending.values():
            for partition, offset in pending.positions.items():
                if offset < positions.get(partition, offset + 1):
                    positions[partition] = offset
        return positions

    def forget_partitions(self, partitions: set[int]) -> None:
        """After a rebalance took these partitions away: their unfinished executions are the new owner's now."""
        for execution_id in [e for e, p in self.pending.items() if partitions & p.positions.keys()]:
            del self.pending[execution_id]
            self.whole.pop(execution_id, None)
        for partition in partitions:
            self.next_offset.pop(partition, None)


# ---------------------------------------------------------------------------------------------------------------
# Sources: a Kafka topic, or a JSON Lines file


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options every consumer here shares (also used by token_costs.py)."""
    kafka = parser.add_argument_group("Kafka")
    kafka.add_argument(
        "--bootstrap-servers", default="localhost:9092", help="host:port[,host:port] (default %(default)s)"
    )
    kafka.add_argument("--topic", default="streamll_events", help="default %(default)s")
    kafka.add_argument("--group-id", default="streamll-rebuild", help="consumer group (default %(default)s)")
    kafka.add_argument(
        "--offset-reset",
        choices=("earliest", "latest"),
        default="earliest",
        help="where a group without committed offsets starts (default %(default)s)",
    )
    kafka.add_argument(
        "--no-commit",
        action="store_true",
        help="never commit offsets (a lookup that must not move the group)",
    )
    kafka.add_argument(
        "--stop-at-end", action="store_true", help="stop once every assigned partition is read to its end"
    )
    kafka.add_argument(
        "-X",
        dest="config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any librdkafka setting, e.g. -X security.protocol=SASL_SSL -X sasl.password=env:KAFKA_SECRET "
        "(env:NAME reads the value from the environment)",
    )
    parser.add_argument(
        "--input", metavar="FILE", help="read a JSON Lines file ('-' for stdin) instead of Kafka"
    )
    parser.add_argument(
        "--max-pending", type=int, default=10_000, help="unfinished executions kept (default %(default)s)"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how long a whole execution waits for events read out of order (default %(default)s)",
    )


def read_file(path: str, collector: ExecutionCollector) -> None:
    stream = sys.stdin.buffer if path == "-" else open(path, "rb")
    with stream:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                collector.add(line, 0, number, f"{path}:{number}")
    collector.flush(wait=False)


def consume_kafka(args: argparse.Namespace, collector: ExecutionCollector, done: Callable[[], bool]) -> None:
    """Reads the topic until ``done()``, a signal, or (``--stop-at-end``) the end of every assigned partition."""
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    config: dict[str, Any] = {
        "bootstrap.servers": args.bootstrap_servers,
        "group.id": args.group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": args.offset_reset,
        "enable.partition.eof": True,
    }
    for setting in args.config:
        key, _, value = setting.partition("=")
        # env:NAME keeps a secret off the command line (which other local users can read).
        config[key.strip()] = os.environ[value[4:]] if value.startswith("env:") else value
    consumer = Consumer(config)
    assigned: set[int] = set()
    at_end: set[int] = set()
    committed: dict[int, int] = {}
    stopping = False
    closing = False

    def commit(partitions: Optional[set[int]] = None) -> None:
        if args.no_commit:
            return
        offsets = [
            TopicPartition(args.topic, partition, offset)
            for partition, offset in collector.committable().items()
            if (partitions is None or partition in partitions) and committed.get(partition) != offset
        ]
        if offsets:
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as error:
                log.warning("commit failed: %s", error.args[0].str())
                return
            committed.update((tp.partition, tp.offset) for tp in offsets)

    def on_assign(_consumer: Any, partitions: list[Any]) -> None:
        assigned.update(tp.partition for tp in partitions)

    def on_revoke(_consumer: Any, partitions: list[Any]) -> None:
        revoked = {tp.partition for tp in partitions}
        commit(revoked)
        # Closing revokes every partition too; then the unfinished executions stay ours to report.
        if not closing:
            collector.forget_partitions(revoked)
        assigned.difference_update(revoked)
        at_end.difference_update(revoked)

    def stop(_signal: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    last_commit = time.monotonic()
    try:
        while not stopping and not done():
            message = consumer.poll(0.5)
            if message is not None and message.error() is not None:
                error = message.error()
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                elif error.fatal() or error.code() in (
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                    KafkaError._UNKNOWN_TOPIC,
                ):
                    raise KafkaException(error)
                else:
                    log.warning("consumer error: %s", error.str())
            elif message is not None:
                at_end.discard(message.partition())
                where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
                collector.add(message.value(), message.partition(), message.offset(), where)
            collector.flush()
            if time.monotonic() - last_commit >= 1.0:
                commit()
                last_commit = time.monotonic()
            if args.stop_at_end and assigned and at_end >= assigned:
                break
        collector.flush(wait=False)  # reading stops: no straggler can come any more
        commit()
    finally:
        closing = True
        consumer.close()


def run(
    args: argparse.Namespace, collector: ExecutionCollector, done: Callable[[], bool] = lambda: False
) -> None:
    if args.input is not None:
        read_file(args.input, collector)
    else:
        consume_kafka(args, collector, done)


# ---------------------------------------------------------------------------------------------------------------
# Command line


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_source_arguments(parser)
    parser.add_argument("--execution-id", help="print only this execution, once it has ended, then stop")
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per execution instead of the tree"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    tolerant_stdout()

    printed: list[str] = []

    def show(execution: Execution) -> None:
        # allow_nan=False: NaN and Infinity are not JSON (parse_event rejects them, so none can come here).
        text = (
            json.dumps(execution_to_dict(execution), ensure_ascii=False, allow_nan=False)
            if args.json
            else render(execution)
        )
        print(text, flush=True)
        printed.append(execution.execution_id)

    collector = ExecutionCollector(
        show, only=args.execution_id, max_pending=args.max_pending, grace=args.grace
    )
    run(args, collector, done=lambda: args.execution_id is not None and bool(printed))
    leftovers = collector.unfinished()
    collector.stats.incomplete = len(leftovers)
    if args.execution_id is not None and not printed:
        # Not ended (or not found) by the time reading stopped: show what there is.
        for execution in leftovers:
            show(execution)
    log.info("%s", collector.stats.summary())
    if args.execution_id is not None and not printed:
        log.error("execution %s not found", args.execution_id)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

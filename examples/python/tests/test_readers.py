"""The Redis and RabbitMQ readers, against stand-ins for their clients (the test suite also runs them against the
real brokers): what they print, acknowledge and log."""

import io
import json
import logging
import os
import re
import socket
import unittest
from contextlib import redirect_stdout
from pathlib import Path
from typing import Optional
from unittest import mock

import rabbitmq_reader
import redis_reader

SAMPLE = Path(__file__).resolve().parent / "events.jsonl"


def sample_events() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_bytes().splitlines() if line.strip()]


def with_lone_surrogate() -> bytes:
    """A valid event whose module name holds a lone surrogate escape, which decodeEvent accepts."""
    return json.dumps({**sample_events()[0], "module_name": "X\ud800Y"}).encode()


def run_printing(main, argv: list[str]) -> list[str]:
    """Runs a reader's main() with a strict UTF-8 stdout, as a pipe or terminal is, and returns its lines."""
    buffer = io.BytesIO()
    stdout = io.TextIOWrapper(buffer, encoding="utf-8", write_through=True)
    with redirect_stdout(stdout):
        main(argv)
    return buffer.getvalue().decode("utf-8").splitlines()


class FakeRedis:
    """One stream and one consumer group: new entries (">"), the reader's pending entries ("0") and those of
    another consumer, all idle long enough to be claimed (XAUTOCLAIM). Records each read's consumer and BLOCK."""

    def __init__(
        self,
        new: list[tuple[bytes, dict]],
        pending: list[tuple[bytes, dict]] = (),
        others: list[tuple[bytes, dict]] = (),
    ):
        self.new = list(new)
        self.pending = {entry_id: fields for entry_id, fields in pending}
        self.others = {entry_id: fields for entry_id, fields in others}
        self.reads: list[tuple[str, str, Optional[int]]] = []  # (consumer, position, block)
        self.claims: list[int] = []  # min idle times
        self.deleted_consumers: list[str] = []

    def xgroup_create(self, *_args, **_kwargs) -> None:
        import redis

        raise redis.ResponseError("BUSYGROUP Consumer Group name already exists")

    def xreadgroup(self, _group, consumer, streams, count, block):
        ((stream, position),) = streams.items()
        self.reads.append((consumer, position, block))
        if len(self.reads) > 50:
            raise AssertionError("the reader did not stop")
        if position != ">":  # history: this consumer's pending entries, never blocks
            return [[stream.encode(), list(self.pending.items())[:count]]]
        delivered, self.new = self.new[:count], self.new[count:]
        self.pending.update(delivered)
        return [[stream.encode(), delivered]] if delivered else []

    def xautoclaim(self, _stream, _group, _consumer, min_idle_time, start_id="0-0", count=None):
        self.claims.append(min_idle_time)
        claimed = list(self.others.items())[:count]
        for entry_id, fields in claimed:
            del self.others[entry_id]
            self.pending[entry_id] = fields
        return [b"0-0", claimed, []]

    def xack(self, _stream, _group, entry_id) -> None:
        self.pending.pop(entry_id, None)

    def xpending_range(self, _stream, _group, _min, _max, count, consumername=None):
        return [{"message_id": entry_id} for entry_id in self.pending][:count]

    def xgroup_delconsumer(self, _stream, _group, consumer) -> None:
        self.deleted_consumers.append(consumer)


def read_redis(client: FakeRedis, *argv: str) -> tuple[list[str], list[str]]:
    """Runs redis_reader against ``client``; returns its lines and its log messages."""
    with mock.patch.object(redis_reader.redis.Redis, "from_url", return_value=client):
        with _capture_logs("streamll.redis_reader") as logs:
            lines = run_printing(redis_reader.main, ["--stream", "s", "--group", "g", *argv])
    return lines, logs


class _capture_logs:
    def __init__(self, name: str):
        self.logger, self.messages = logging.getLogger(name), []

    def __enter__(self) -> list[str]:
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.messages.append(record.getMessage())
        self.logger.addHandler(self.handler)
        return self.messages

    def __exit__(self, *_exc) -> None:
        self.logger.removeHandler(self.handler)


def big_event(size: int) -> bytes:
    """A valid event of about ``size`` bytes (its data holds one long string)."""
    event = {**sample_events()[1], "data": {"text": "x" * size}}
    return json.dumps(event).encode()


class RedisReaderTest(unittest.TestCase):
    def test_handles_its_own_pending_entries_first_and_a_lone_surrogate_stops_nothing(self) -> None:
        # A reader died on the first entry (print() raised on the lone surrogate) and left both pending.
        valid = json.dumps(sample_events()[1]).encode()
        client = FakeRedis(
            new=[(b"3-0", {b"event": valid})],
            pending=[(b"1-0", {b"event": with_lone_surrogate()}), (b"2-0", {b"event": valid}), (b"2-1", {})],
        )
        argv = ["--stream", "s", "--group", "g", "--consumer", "me", "--idle-exit", "0.01"]
        with mock.patch.object(redis_reader.redis.Redis, "from_url", return_value=client):
            lines = run_printing(redis_reader.main, argv)
        self.assertEqual(len(lines), 3)
        self.assertIn(" X\ufffdY.", lines[0])
        self.assertEqual((client.pending, client.new), ({}, []))  # every entry acknowledged, the deleted one too
        self.assertEqual({consumer for consumer, _position, _block in client.reads}, {"me"})
        self.assertEqual(client.deleted_consumers, ["me"])  # nothing left pending on it: it leaves the group

    def test_idle_exit_0_exits_at_the_first_empty_read_and_never_blocks_forever(self) -> None:
        valid = json.dumps(sample_events()[1]).encode()
        client = FakeRedis(new=[(b"1-0", {b"event": valid})])
        lines, _logs = read_redis(client, "--idle-exit", "0")
        self.assertEqual(len(lines), 1)
        # No BLOCK at all: XREADGROUP returns at once; the reader stops at the first read that returns nothing.
        reads = [(position, block) for _consumer, position, block in client.reads]
        self.assertEqual(reads, [("0", None), (">", None), (">", None)])
        for seconds, block in (("0.0001", 1), ("0.0004", 1), ("0.25", 250), ("2", 2000)):
            with self.subTest(idle_exit=seconds):  # BLOCK 0 would wait forever: at least 1 ms
                client = FakeRedis(new=[])
                read_redis(client, "--idle-exit", seconds)
                self.assertEqual([(p, b) for _c, p, b in client.reads], [("0", None), (">", block)])
        with self.assertRaises(SystemExit), mock.patch("sys.stderr", io.StringIO()):
            redis_reader.main(["--idle-exit", "-1"])  # refused: argparse exits

    def test_events_over_1_mib_need_max_bytes(self) -> None:
        big = big_event(1_600_000)
        client = FakeRedis(new=[(b"1-0", {b"event": big})])
        lines, logs = read_redis(client, "--idle-exit", "0")
        self.assertEqual(lines, [])
        self.assertIn("larger than 1048576", "\n".join(logs))
        self.assertIn("0 events, 1 invalid", logs)
        client = FakeRedis(new=[(b"1-0", {b"event": big})])
        lines, logs = read_redis(client, "--idle-exit", "0", "--max-bytes", str(4 * 1024 * 1024))
        self.assertEqual(len(lines), 1)
        self.assertIn("1 events, 0 invalid", logs)
        self.assertEqual(client.pending, {})

    def test_each_process_is_its_own_consumer_by_default(self) -> None:
        names = []
        for _run in range(2):
            client = FakeRedis(new=[])
            read_redis(client, "--idle-exit", "0")
            names.append({consumer for consumer, _position, _block in client.reads}.pop())
        pattern = rf"{re.escape(socket.gethostname())}-{os.getpid()}-[0-9a-f]{{8}}"
        for name in names:
            self.assertRegex(name, pattern)
        self.assertNotEqual(names[0], names[1])  # the random part: two readers in one process differ too

    def test_takes_over_entries_another_consumer_left_pending(self) -> None:
        valid = json.dumps(sample_events()[1]).encode()
        client = FakeRedis(new=[], others=[(b"1-0", {b"event": valid}), (b"1-1", {b"event": valid})])
        lines, _logs = read_redis(client, "--idle-exit", "0", "--claim-idle-ms", "5000")
        self.assertEqual(len(lines), 2)
        self.assertEqual((client.others, client.pending), ({}, {}))
        self.assertEqual(client.claims[0], 5000)
        client = FakeRedis(new=[], others=[(b"1-0", {b"event": valid})])
        lines, _logs = read_redis(client, "--idle-exit", "0", "--claim-idle-ms", "0")  # 0: never claims
        self.assertEqual((lines, client.claims, len(client.others)), ([], [], 1))

    def test_keeps_its_consumer_while_entries_are_pending_on_it(self) -> None:
        client = FakeRedis(new=[(b"1-0", {b"event": json.dumps(sample_events()[1]).encode()})])
        with mock.patch.object(redis_reader, "print", side_effect=OSError("stdout closed"), create=True):
            with self.assertRaises(OSError):
                read_redis(client, "--consumer", "me", "--idle-exit", "0")
        self.assertEqual((list(client.pending), client.deleted_consumers), ([b"1-0"], []))


class FakeChannel:
    def __init__(self, bodies: list[bytes]):
        self.bodies = bodies
        self.acked: list[int] = []
        self.rejected: list[tuple[int, bool]] = []

    def consume(self, _queue, inactivity_timeout=None):
        for tag, body in enumerate(self.bodies, start=1):
            yield mock.Mock(delivery_tag=tag), None, body
        yield None, None, None  # nothing arrived for --idle-exit seconds

    def basic_ack(self, tag) -> None:
        self.acked.append(tag)

    def basic_nack(self, tag, requeue=True) -> None:
        self.rejected.append((tag, requeue))

    def __getattr__(self, _name):  # queue_declare, exchange_declare, queue_bind, basic_qos, cancel
        return lambda *args, **kwargs: None


class RabbitMQReaderTest(unittest.TestCase):
    def test_one_line_per_event_without_pika_chatter(self) -> None:
        valid = json.dumps(sample_events()[1]).encode()
        channel = FakeChannel([with_lone_surrogate(), b'{"not": "an event"}', valid])

        def connect(_parameters):
            # What pika logs on every connection, at INFO.
            logging.getLogger("pika.adapters.blocking_connection").info("Created channel=1")
            return mock.Mock(channel=lambda: channel)

        with mock.patch.object(rabbitmq_reader.pika, "BlockingConnection", connect):
            with self.assertNoLogs("pika", level=logging.INFO):
                lines = run_printing(rabbitmq_reader.main, ["--idle-exit", "0.01"])
        self.assertEqual(len(lines), 2)
        self.assertIn(" X\ufffdY.", lines[0])
        self.assertEqual((channel.acked, channel.rejected), ([1, 3], [(2, False)]))

    def test_events_over_1_mib_need_max_bytes(self) -> None:
        for argv, acked, rejected in (([], [], [(1, False)]), (["--max-bytes", "4194304"], [1], [])):
            with self.subTest(argv=argv):
                channel = FakeChannel([big_event(1_600_000)])
                connection = mock.Mock(channel=lambda: channel)
                with mock.patch.object(rabbitmq_reader.pika, "BlockingConnection", return_value=connection):
                    with self.assertLogs("streamll.rabbitmq_reader") as logs:
                        lines = run_printing(rabbitmq_reader.main, ["--idle-exit", "0", *argv])
                self.assertEqual((len(lines), channel.acked, channel.rejected), (len(acked), acked, rejected))
                if rejected:
                    self.assertIn("larger than 1048576", "\n".join(logs.output))

    def test_uses_an_existing_queue_as_it_is_and_declares_only_a_missing_one(self) -> None:
        # Redeclaring a quorum queue, or one with a dead-letter exchange, without its arguments fails with
        # PRECONDITION_FAILED (406): an existing queue is only checked (passive), never redeclared.
        def fake_channel(missing: bool) -> mock.Mock:
            channel = mock.Mock()

            def queue_declare(queue, passive=False, durable=False):
                if passive and missing:
                    raise rabbitmq_reader.pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND - no queue")

            channel.queue_declare.side_effect = queue_declare
            return channel

        existing = fake_channel(missing=False)
        connection = mock.Mock(channel=mock.Mock(side_effect=[existing]))
        self.assertIs(rabbitmq_reader.open_queue(connection, "q"), existing)
        self.assertEqual(existing.queue_declare.call_args_list, [mock.call("q", passive=True)])

        closed, fresh = fake_channel(missing=True), fake_channel(missing=False)
        connection = mock.Mock(channel=mock.Mock(side_effect=[closed, fresh]))
        self.assertIs(rabbitmq_reader.open_queue(connection, "q"), fresh)  # the 404 closed the first channel
        self.assertEqual(fresh.queue_declare.call_args_list, [mock.call("q", durable=True)])

        refused = mock.Mock()
        refused.queue_declare.side_effect = rabbitmq_reader.pika.exceptions.ChannelClosedByBroker(403, "ACCESS")
        with self.assertRaises(rabbitmq_reader.pika.exceptions.ChannelClosedByBroker):
            rabbitmq_reader.open_queue(mock.Mock(channel=lambda: refused), "q")


if __name__ == "__main__":
    unittest.main()

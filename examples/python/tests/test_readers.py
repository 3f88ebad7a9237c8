"""The Redis and RabbitMQ readers, against stand-ins for their clients (the test suite also runs them against the
real brokers): what they print, acknowledge and log."""

import io
import json
import logging
import unittest
from contextlib import redirect_stdout
from pathlib import Path
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
    """One stream and one consumer group: new entries (">") and each consumer's pending entries ("0")."""

    def __init__(self, new: list[tuple[bytes, dict]], pending: list[tuple[bytes, dict]]):
        self.new = list(new)
        self.pending = {entry_id: fields for entry_id, fields in pending}

    def xgroup_create(self, *_args, **_kwargs) -> None:
        import redis

        raise redis.ResponseError("BUSYGROUP Consumer Group name already exists")

    def xreadgroup(self, _group, _consumer, streams, count, block):
        ((stream, position),) = streams.items()
        if position != ">":  # history: this consumer's pending entries, never blocks
            return [[stream.encode(), list(self.pending.items())[:count]]]
        delivered, self.new = self.new[:count], self.new[count:]
        self.pending.update(delivered)
        return [[stream.encode(), delivered]] if delivered else []

    def xack(self, _stream, _group, entry_id) -> None:
        self.pending.pop(entry_id, None)


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

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

    def __getattr__(self, _name):  # exchange_declare, queue_declare, queue_bind, basic_qos, cancel
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


if __name__ == "__main__":
    unittest.main()

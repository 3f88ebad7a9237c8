"""The Redis and RabbitMQ readers as processes against the real brokers (``REDIS_URL``, default
redis://127.0.0.1:6379; ``RABBITMQ_URL``, default amqp://guest:guest@127.0.0.1:5672/%2F): events over 1 MiB with
``--max-bytes``, ``--idle-exit 0``, one consumer per process, resuming a ``--consumer`` name's pending entries and
taking over a crashed consumer's with ``--claim-idle-ms``. Every stream, group, exchange and queue has a unique
name (prefix ``STREAMLL_TEST_PREFIX``, default ``streamll-py-test-``) and is deleted afterwards. Without a
reachable broker the tests skip, and with ``CI=true`` they fail instead: CI starts the brokers before it tests.
"""

import json
import os
import secrets
import subprocess
import sys
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
READERS = HERE.parent
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379"
RABBITMQ_URL = os.environ.get("RABBITMQ_URL") or "amqp://guest:guest@127.0.0.1:5672/%2F"
PREFIX = os.environ.get("STREAMLL_TEST_PREFIX") or "streamll-py-test-"


def unavailable(reason: str) -> None:
    """Skips the test, or fails it with CI=true (where a missing broker is a broken set-up, not a skip)."""
    if os.environ.get("CI") == "true":
        raise AssertionError(f"{reason} (CI=true: not skipped)")
    raise unittest.SkipTest(reason)


def unique(name: str) -> str:
    return f"{PREFIX}{name}-{secrets.token_hex(4)}"


def sample_lines() -> list[bytes]:
    return [line for line in (HERE / "events.jsonl").read_bytes().splitlines() if line.strip()]


def big_event(size: int) -> bytes:
    return json.dumps({**json.loads(sample_lines()[1]), "data": {"text": "x" * size}}).encode()


def run_reader(script: str, *argv: str, timeout: float = 30) -> tuple[int, list[str], str, float]:
    """Runs a reader; returns its exit code, its lines, its stderr and how long it ran (seconds)."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(READERS / script), *argv], capture_output=True, text=True, timeout=timeout
    )
    return result.returncode, result.stdout.splitlines(), result.stderr, time.monotonic() - started


class RedisReaderLiveTest(unittest.TestCase):
    def setUp(self) -> None:
        import redis

        self.client = redis.Redis.from_url(REDIS_URL)
        try:
            self.client.ping()
        except redis.RedisError as error:
            self.client.close()
            unavailable(f"Redis not reachable at {REDIS_URL}: {type(error).__name__}")
        self.stream, self.group = unique("stream"), unique("group")
        self.addCleanup(self.client.close)
        self.addCleanup(self.client.delete, self.stream)

    def read(self, *argv: str) -> tuple[int, list[str], str, float]:
        base = ["--url", REDIS_URL, "--stream", self.stream, "--group", self.group, "--from-start"]
        return run_reader("redis_reader.py", *base, *argv)

    def pending(self, consumer: str) -> int:
        return len(self.client.xpending_range(self.stream, self.group, "-", "+", 1000, consumername=consumer))

    def test_idle_exit_0_and_events_over_1_mib_with_max_bytes(self) -> None:
        lines = sample_lines()[:3]
        for line in lines:
            self.client.xadd(self.stream, {"event": line})
        self.client.xadd(self.stream, {"event": big_event(1_600_000)})
        status, printed, stderr, took = self.read("--idle-exit", "0")
        self.assertEqual((status, len(printed)), (0, 3), stderr)
        self.assertIn("larger than 1048576", stderr)
        self.assertIn("3 events, 1 invalid", stderr)
        self.assertLess(took, 10)  # it used to wait 5 s a read, forever
        self.client.xgroup_destroy(self.stream, self.group)
        status, printed, stderr, _took = self.read("--idle-exit", "0", "--max-bytes", "2000000")
        self.assertEqual((status, len(printed)), (0, 4), stderr)
        self.assertIn("4 events, 0 invalid", stderr)
        # Under 1 ms: BLOCK 1, never BLOCK 0 (which waits forever).
        status, printed, stderr, took = self.read("--idle-exit", "0.0001")
        self.assertEqual((status, printed), (0, []), stderr)
        self.assertLess(took, 10)

    def test_a_second_reader_on_the_host_leaves_the_first_ones_entries_and_a_restart_resumes_them(self) -> None:
        for line in sample_lines()[:6]:
            self.client.xadd(self.stream, {"event": line})
        self.client.xgroup_create(self.stream, self.group, id="0")
        # A reader fetched all six and is still handling them (or crashed) under an explicit name.
        self.client.xreadgroup(self.group, "worker-1", {self.stream: ">"}, count=6)
        status, printed, stderr, _took = self.read("--idle-exit", "0")  # default name, same host
        self.assertEqual((status, printed), (0, []), stderr)
        self.assertEqual(self.pending("worker-1"), 6)
        status, printed, stderr, _took = self.read("--idle-exit", "0", "--consumer", "worker-1")
        self.assertEqual((status, len(printed)), (0, 6), stderr)
        self.assertEqual(self.pending("worker-1"), 0)
        # Every reader left the group on exit: nothing was pending on it.
        self.assertEqual(self.client.xinfo_consumers(self.stream, self.group), [])

    def test_takes_over_what_a_crashed_consumer_left_pending(self) -> None:
        for line in sample_lines()[:5]:
            self.client.xadd(self.stream, {"event": line})
        self.client.xgroup_create(self.stream, self.group, id="0")
        self.client.xreadgroup(self.group, "crashed", {self.stream: ">"}, count=5)
        status, printed, stderr, _took = self.read("--idle-exit", "0", "--claim-idle-ms", "60000")
        self.assertEqual((status, printed, self.pending("crashed")), (0, [], 5), stderr)  # not idle long enough
        time.sleep(0.3)
        status, printed, stderr, _took = self.read("--idle-exit", "0", "--claim-idle-ms", "200")
        self.assertEqual((status, len(printed)), (0, 5), stderr)
        self.assertEqual(self.client.xpending(self.stream, self.group)["pending"], 0)


class RabbitMQReaderLiveTest(unittest.TestCase):
    def test_events_over_1_mib_with_max_bytes(self) -> None:
        import pika

        try:
            connection = pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL))
        except pika.exceptions.AMQPError as error:
            unavailable(f"RabbitMQ not reachable at {RABBITMQ_URL}: {type(error).__name__}")
        self.addCleanup(connection.close)
        channel = connection.channel()
        exchange, queue = unique("exchange"), unique("queue")
        channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        self.addCleanup(channel.exchange_delete, exchange)
        channel.queue_declare(queue, durable=True)
        self.addCleanup(channel.queue_delete, queue)
        channel.queue_bind(queue, exchange, "#")
        base = ["--url", RABBITMQ_URL, "--exchange", exchange, "--queue", queue, "--idle-exit", "1"]
        for argv, handled, invalid in (([], 1, 1), (["--max-bytes", "2000000"], 2, 0)):
            with self.subTest(argv=argv):
                channel.basic_publish(exchange, "streamll.x.end", sample_lines()[0])
                channel.basic_publish(exchange, "streamll.x.end", big_event(1_600_000))
                status, printed, stderr, _took = run_reader("rabbitmq_reader.py", *base, *argv)
                self.assertEqual((status, len(printed)), (0, handled), stderr)
                self.assertIn(f"{handled} events, {invalid} invalid", stderr)
                self.assertEqual(channel.queue_declare(queue, passive=True).method.message_count, 0)


if __name__ == "__main__":
    unittest.main()

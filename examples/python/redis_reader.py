"""Reads streamll events from a Redis stream in a consumer group and prints one line per event.

    python redis_reader.py --url redis://localhost:6379 --stream streamll_events --group dashboard

Each entry is acknowledged (XACK) after it was handled; an invalid one (larger than --max-bytes included) is
counted, logged without its content and acknowledged too, so it never stops the reader. Each process is its own
consumer, named <hostname>-<pid>-<random> unless --consumer names it. On start, the reader first handles the
entries its consumer name read before and never acknowledged (a reader restarted with the same --consumer
resumes them); entries left pending on another consumer (a reader that crashed) for --claim-idle-ms are taken
over with XAUTOCLAIM (Redis 6.2 or later) and handled too, so none stays pending. On exit, a consumer with
nothing pending is deleted from the group (XGROUP DELCONSUMER), so the per-process names do not pile up.
"""

import argparse
import logging
import os
import secrets
import socket
import time
from typing import Optional

import redis

from streamll_event import DEFAULT_MAX_BYTES, InvalidEvent, parse_event, tolerant_stdout

log = logging.getLogger("streamll.redis_reader")


def at_least(minimum: int, convert=int):
    def parse(text: str):
        value = convert(text)
        if not value >= minimum:  # NaN too
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {text}")
        return value

    return parse


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Print streamll events from a Redis stream.")
    parser.add_argument("--url", default="redis://localhost:6379")
    parser.add_argument("--stream", default="streamll_events")
    parser.add_argument("--group", default="streamll-python")
    parser.add_argument(
        "--consumer",
        default=f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}",
        help="consumer name (default <hostname>-<pid>-<random>); reuse one to resume its pending entries",
    )
    parser.add_argument("--from-start", action="store_true", help="a new group starts at the oldest entry")
    parser.add_argument(
        "--idle-exit", type=at_least(0, float), metavar="SECONDS",
        help="stop when nothing arrives for this long; 0: as soon as a read returns nothing",
    )
    parser.add_argument(
        "--max-bytes", type=at_least(1), default=DEFAULT_MAX_BYTES, metavar="BYTES",
        help="larger events are invalid (default 1 MiB, as decodeEvent); set it to the producers' maxEventBytes",
    )
    parser.add_argument(
        "--claim-idle-ms", type=at_least(0), default=60_000, metavar="MS",
        help="take over entries pending this long on another consumer (default 60000; 0: never)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    tolerant_stdout()

    client = redis.Redis.from_url(args.url)
    try:
        client.xgroup_create(args.stream, args.group, id="0" if args.from_start else "$", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):  # the group exists: it keeps its position
            raise
    # Without BLOCK a read returns at once (--idle-exit 0); BLOCK 0 would wait forever, so it is 1 ms or more.
    block_ms = 5000
    if args.idle_exit is not None:
        block_ms = max(1, round(args.idle_exit * 1000)) if args.idle_exit > 0 else None
    claim_every = min(args.claim_idle_ms, 10_000) / 1000
    handled = invalid = 0

    def handle(entries) -> None:
        nonlocal handled, invalid
        for entry_id, fields in entries:
            if entry_id is None:  # XAUTOCLAIM on Redis 6.2: an entry deleted from the stream
                continue
            try:
                event = parse_event((fields or {}).get(b"event"), args.max_bytes)  # deleted: no fields
                print(
                    f"{event.timestamp.isoformat()} {event.execution_id} {event.module_name}."
                    f"{event.method_name} {event.event_type}",
                    flush=True,
                )
                handled += 1
            except InvalidEvent as error:
                invalid += 1
                log.warning("skipped invalid entry %s: %s", entry_id.decode(), error)
            client.xack(args.stream, args.group, entry_id)

    def claim() -> bool:
        """Takes over and handles the entries idle for --claim-idle-ms on other consumers; True if there were."""
        claimed, start = False, "0-0"
        while True:
            reply = client.xautoclaim(
                args.stream, args.group, args.consumer, args.claim_idle_ms, start_id=start, count=100
            )
            start, entries = reply[0], reply[1]
            claimed = claimed or bool(entries)
            handle(entries)
            if start in (b"0-0", "0-0"):
                return claimed

    # ">" reads only entries new to the group, so first "0": this consumer's own pending entries, read
    # before a stop or a crash and never acknowledged. Each is acknowledged below, so "0" returns the rest
    # until none is left.
    position = "0"
    last_claim = None
    try:
        while True:
            if position == ">" and args.claim_idle_ms > 0:
                if last_claim is None or time.monotonic() - last_claim >= claim_every:
                    last_claim = time.monotonic()
                    if claim():
                        continue
            streams = {args.stream: position}
            block = None if position == "0" else block_ms  # "0" never waits
            batch = client.xreadgroup(args.group, args.consumer, streams, count=100, block=block)
            if position == "0":
                if not any(entries for _stream, entries in batch):
                    position = ">"
                    continue
            elif not batch and args.idle_exit is not None:
                break
            for _stream, entries in batch:
                handle(entries)
    finally:
        try:  # what is still pending (a crash mid-batch) stays, for a restart with this --consumer or a claim
            if not client.xpending_range(args.stream, args.group, "-", "+", 1, consumername=args.consumer):
                client.xgroup_delconsumer(args.stream, args.group, args.consumer)
        except redis.RedisError:
            pass
    log.info("%d events, %d invalid", handled, invalid)


if __name__ == "__main__":
    main()

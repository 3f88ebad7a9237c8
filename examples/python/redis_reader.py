"""Reads streamll events from a Redis stream in a consumer group and prints one line per event.

    python redis_reader.py --url redis://localhost:6379 --stream streamll_events --group dashboard

Each entry is acknowledged (XACK) after it was handled; an invalid one is counted, logged without its content
and acknowledged too, so it never stops the reader. On start, the reader first handles the entries its
consumer name read before and never acknowledged (it was stopped or crashed), so none stays pending.
"""

import argparse
import logging
import socket
from typing import Optional

import redis

from streamll_event import InvalidEvent, parse_event, tolerant_stdout

log = logging.getLogger("streamll.redis_reader")


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Print streamll events from a Redis stream.")
    parser.add_argument("--url", default="redis://localhost:6379")
    parser.add_argument("--stream", default="streamll_events")
    parser.add_argument("--group", default="streamll-python")
    parser.add_argument("--consumer", default=socket.gethostname())
    parser.add_argument("--from-start", action="store_true", help="a new group starts at the oldest entry")
    parser.add_argument(
        "--idle-exit", type=float, metavar="SECONDS", help="stop when nothing arrives for this long"
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
    block_ms = int((args.idle_exit or 5) * 1000)
    handled = invalid = 0
    # ">" reads only entries new to the group, so first "0": this consumer's own pending entries, read
    # before a stop or a crash and never acknowledged. Each is acknowledged below, so "0" returns the rest
    # until none is left.
    position = "0"
    while True:
        streams = {args.stream: position}
        batch = client.xreadgroup(args.group, args.consumer, streams, count=100, block=block_ms)
        if position == "0" and not any(entries for _stream, entries in batch):
            position = ">"
            continue
        if not batch and args.idle_exit:
            break
        for _stream, entries in batch:
            for entry_id, fields in entries:
                try:
                    event = parse_event(fields.get(b"event"))  # a deleted entry has no fields
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
    log.info("%d events, %d invalid", handled, invalid)


if __name__ == "__main__":
    main()

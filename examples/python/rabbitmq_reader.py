"""Reads streamll events from RabbitMQ through a durable queue bound to the streamll exchange, one line each.

    python rabbitmq_reader.py --url amqp://guest:guest@localhost:5672/%2F --queue streamll-python

A queue that exists is used as it is: its type (classic or quorum), dead-letter exchange and other arguments are
whatever declared it (RabbitMQSink's ``queue`` option, RabbitMQEventReader, a policy, an operator). Only a
missing queue is declared, durable and without arguments, as RabbitMQSink declares ``queue: { name }``.

Each message is acknowledged after it was handled; an invalid one (larger than --max-bytes, 1 MiB by default,
included) is counted, logged without its content and rejected without requeueing (to the queue's dead-letter
exchange, if it has one), so it never stops the reader.
"""

import argparse
import logging
from typing import Optional

import pika
from pika.adapters.blocking_connection import BlockingChannel

from streamll_event import DEFAULT_MAX_BYTES, InvalidEvent, parse_event, tolerant_stdout

log = logging.getLogger("streamll.rabbitmq_reader")


def at_least(minimum: int, convert=int):
    def parse(text: str):
        value = convert(text)
        if not value >= minimum:  # NaN too
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {text}")
        return value

    return parse


def open_queue(connection: pika.BlockingConnection, queue: str) -> BlockingChannel:
    """A channel on which ``queue`` exists, declared durable if it did not exist yet.

    A passive declare checks the queue without its arguments: redeclaring a quorum queue, or one with a
    dead-letter exchange, without the same arguments fails with PRECONDITION_FAILED (406). A missing queue
    makes the broker close the channel (NOT_FOUND, 404), so the declare runs on a new one.
    """
    channel = connection.channel()
    channel_log = logging.getLogger("pika.channel")
    level = channel_log.level
    channel_log.setLevel(logging.ERROR)  # pika warns of every channel the broker closes, this expected one too
    try:
        channel.queue_declare(queue, passive=True)
        return channel
    except pika.exceptions.ChannelClosedByBroker as error:
        if error.reply_code != 404:
            raise
    finally:
        channel_log.setLevel(level)
    channel = connection.channel()
    channel.queue_declare(queue, durable=True)
    return channel


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Print streamll events from RabbitMQ.")
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672/%2F")
    parser.add_argument("--exchange", default="streamll_events")
    parser.add_argument("--queue", default="streamll-python")
    parser.add_argument("--binding", default="#", help="topic pattern, e.g. streamll.*.error")
    parser.add_argument(
        "--idle-exit", type=at_least(0, float), metavar="SECONDS",
        help="stop when nothing arrives for this long; 0: as soon as no message is waiting",
    )
    parser.add_argument(
        "--max-bytes", type=at_least(1), default=DEFAULT_MAX_BYTES, metavar="BYTES",
        help="larger events are invalid (default 1 MiB, as decodeEvent); set it to the producers' maxEventBytes",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    # pika logs every connection step at INFO; only its warnings and errors belong next to the events.
    logging.getLogger("pika").setLevel(logging.WARNING)
    tolerant_stdout()

    connection = pika.BlockingConnection(pika.URLParameters(args.url))
    channel = open_queue(connection, args.queue)
    channel.exchange_declare(args.exchange, exchange_type="topic", durable=True)
    channel.queue_bind(args.queue, args.exchange, routing_key=args.binding)
    channel.basic_qos(prefetch_count=100)
    handled = invalid = 0
    for method, _properties, body in channel.consume(args.queue, inactivity_timeout=args.idle_exit):
        if method is None:  # nothing arrived for --idle-exit seconds
            break
        try:
            event = parse_event(body, args.max_bytes)
        except InvalidEvent as error:
            invalid += 1
            log.warning("rejected invalid message %s: %s", method.delivery_tag, error)
            channel.basic_nack(method.delivery_tag, requeue=False)
            continue
        print(
            f"{event.timestamp.isoformat()} {event.execution_id} {event.module_name}."
            f"{event.method_name} {event.event_type}",
            flush=True,
        )
        handled += 1
        channel.basic_ack(method.delivery_tag)
    channel.cancel()
    connection.close()
    log.info("%d events, %d invalid", handled, invalid)


if __name__ == "__main__":
    main()

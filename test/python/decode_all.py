"""Reads every committed message of every topic with a given prefix using Confluent's own Python client,
the way a third-party consumer would: confluent_kafka's Consumer, and AvroDeserializer (fastavro, logical
types on) with a SchemaRegistryClient pointed at the registry's Confluent-compatible URL.

A topic is Avro when the registry has a `<topic>-value` subject; its keys and values are decoded, and
every failure is reported. Other topics (dead letters, state) are only counted, and for dead-letter
topics each value must be a JSON object. Prints one JSON document:

  {"topics": {name: {"format", "messages", "tombstones", "timestamps", "int_sum", "nulled": {field: n}}},
   "errors": [{"topic", "partition", "offset", "part", "error"}], "registry_subjects": n}

`timestamps` counts decoded datetime values, which proves the logical types were applied; `int_sum` is
the exact sum (a decimal string) of every integer decoded, so int64 extremes can be compared with
another decoder; `nulled` counts the paths named in `_nulled_fields`, each checked to be null.

usage: decode_all.py --bootstrap HOST:PORT --registry URL --prefix PREFIX [--timeout SECONDS]
"""

import argparse
import datetime
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def count_timestamps(value):
    if isinstance(value, datetime.datetime):
        return 1
    if isinstance(value, dict):
        return sum(count_timestamps(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_timestamps(v) for v in value)
    return 0


def int_sum(value):
    """Sum of every integer in a decoded value (bools are not integers here); checked against avsc."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return sum(int_sum(v) for v in value.values())
    if isinstance(value, list):
        return sum(int_sum(v) for v in value)
    return 0


def value_at(record, path):
    """The value at a `_nulled_fields` path such as `created_at_ms` or `fields[2].at`."""
    current = record
    for part in path.split("."):
        name, _, rest = part.partition("[")
        current = current[name]
        while rest:
            index, _, rest = rest.partition("]")
            current = current[int(index)]
            rest = rest.lstrip("[")
    return current


def partitions_with_data(consumer, topic, metadata):
    """Each partition of the topic with its high-water mark, skipping empty ones."""
    out = []
    for p in metadata.topics[topic].partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            out.append((p, low, high))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    registry = SchemaRegistryClient({"url": args.registry})
    subjects = set(registry.get_subjects())

    def has_value_subject(topic):
        # Asked per subject: a registry's subject listing can be capped (Apicurio's ccompat lists at most
        # 1,000), and a long-lived stack holds more than that.
        try:
            registry.get_latest_version(f"{topic}-value")
            return True
        except SchemaRegistryError as err:
            if err.http_status_code == 404:
                return False
            raise
    # No reader schema: each message is read with its writer schema, fetched by id (GET /schemas/ids/{id}).
    deserializer = AvroDeserializer(registry)

    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    metadata = admin.list_topics(timeout=30)
    topics = sorted(t for t in metadata.topics if t.startswith(args.prefix))

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": f"decode-all-{time.time_ns()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )
    report = {"topics": {}, "errors": [], "registry_subjects": len(subjects)}
    assignment = []
    pending = set()
    for topic in topics:
        avro = has_value_subject(topic)
        report["topics"][topic] = {
            "format": "avro" if avro else ("json" if topic.endswith("dlq") else "other"),
            "messages": 0,
            "tombstones": 0,
            "timestamps": 0,
            "int_sum": 0,
            "nulled": {},
        }
        for p, low, _high in partitions_with_data(consumer, topic, metadata):
            assignment.append(TopicPartition(topic, p, low))
            pending.add((topic, p))
    if assignment:
        consumer.assign(assignment)

    def fail(msg, part, err):
        report["errors"].append(
            {
                "topic": msg.topic(),
                "partition": msg.partition(),
                "offset": msg.offset(),
                "part": part,
                "error": f"{type(err).__name__}: {err}",
            }
        )

    deadline = time.monotonic() + args.timeout
    while pending and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None:
            continue
        if msg.error():
            # With read_committed, the end is the last stable offset: every committed record is read.
            if msg.error().code() == KafkaError._PARTITION_EOF:
                pending.discard((msg.topic(), msg.partition()))
                continue
            report["errors"].append({"topic": msg.topic(), "part": "consumer", "error": str(msg.error())})
            continue
        stats = report["topics"][msg.topic()]
        stats["messages"] += 1
        if msg.value() is None:
            stats["tombstones"] += 1
        if stats["format"] == "json" and msg.value() is not None:
            try:
                if not isinstance(json.loads(msg.value()), dict):
                    raise ValueError("not a JSON object")
            except Exception as err:  # noqa: BLE001 - every failure is reported, none stops the read
                fail(msg, "value", err)
        if stats["format"] != "avro":
            continue
        if msg.key() is not None:
            try:
                deserializer(msg.key(), SerializationContext(msg.topic(), MessageField.KEY))
            except Exception as err:  # noqa: BLE001
                fail(msg, "key", err)
        if msg.value() is None:
            continue
        try:
            value = deserializer(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
        except Exception as err:  # noqa: BLE001
            fail(msg, "value", err)
            continue
        stats["timestamps"] += count_timestamps(value)
        stats["int_sum"] += int_sum(value)
        for path in value.get("_nulled_fields", []):
            stats["nulled"][path] = stats["nulled"].get(path, 0) + 1
            try:
                if value_at(value, path) is not None:
                    raise ValueError(f"{path} is named in _nulled_fields but is not null")
            except (KeyError, IndexError, TypeError, ValueError) as err:
                fail(msg, "value", err)
    for topic, p in sorted(pending):
        report["errors"].append({"topic": topic, "partition": p, "part": "consumer", "error": "timed out"})
    consumer.close()
    # As a decimal string: the sum of int64 values outgrows what JSON readers keep exact.
    for stats in report["topics"].values():
        stats["int_sum"] = str(stats["int_sum"])
    json.dump(report, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

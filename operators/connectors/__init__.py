"""Connectors: all of burnwatch's I/O, as Bytewax sources and sinks.

Kafka, files, Parquet and webhooks. The only room that may import a network or storage
client (confluent-kafka, fsspec, httpx); it may import the logic rooms, never the reverse.
"""

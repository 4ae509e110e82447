"""Integration tests of operators/connectors/.

Real Kafka, S3 and HTTP receivers, started by infra/services.sh."""

"""Kafka: the embedded broker, topic administration, producing and client settings."""

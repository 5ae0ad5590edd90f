"""Records of resources: identifier checks, validation and the Kafka encoding."""

"""The hub's public HTTP endpoint: pages anyone may read without a certificate."""

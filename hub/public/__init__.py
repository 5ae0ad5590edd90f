"""The hub's public HTTP site: pages and feeds anyone may read without a certificate."""

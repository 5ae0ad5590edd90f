"""The Arrow columnar cache that answers verifications and lookups."""

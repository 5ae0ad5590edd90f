"""Governance: department identity, the managed catalogue, grants, purpose binding, masking and the audit trail."""

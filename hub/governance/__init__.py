"""Governance: department identity, grants, purpose binding, masking and the audit trail."""

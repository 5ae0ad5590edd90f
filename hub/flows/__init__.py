"""Flows between departments: change subscriptions, notices, cases, joint restriction, corrections."""

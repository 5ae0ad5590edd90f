"""The administrative-power platform's supervision: power list, case steps, alerts, report, ledgers, publicity."""

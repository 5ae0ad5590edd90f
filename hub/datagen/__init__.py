"""Seeded synthetic city data: residents, market entities, credit records, and departments' exports."""

"""Chaos and fresh working directories: the seeded schedule, the service, the slug and its diff, the report."""

"""Small shared utilities: seeding, progress bars."""

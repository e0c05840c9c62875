"""Core: ids, errors, settings, hashing, clock and validation shared by every layer."""

"""The run's settings: the typed schema of every key (schema) and the checks that refuse a bad value in one line
before anything heavy loads (validate)."""

__all__ = ["schema", "validate"]

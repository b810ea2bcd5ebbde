"""The run's settings: the typed schema of every key (schema), the checks that refuse a bad value in one line
before anything heavy loads (validate), and the reference generated from both and conf/ (reference)."""

__all__ = ["reference", "schema", "validate"]

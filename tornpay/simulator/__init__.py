"""The built-in WeChat Pay v2 / OAuth simulator (its own in-memory state, no merchant knowledge)."""

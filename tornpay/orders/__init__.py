"""The orders core: state transitions, the hook outbox dispatcher and the reconciler."""

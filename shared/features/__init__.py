"""Feature engineering and the online scaler: pure functions and small
stateful objects with no I/O, shared by the normalizer and its tests."""

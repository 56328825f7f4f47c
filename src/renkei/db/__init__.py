"""Engine, sessions (one transaction per request) and column types."""

"""Idempotency-Key: a POST retried by a tablet on a flaky network replays its first response."""

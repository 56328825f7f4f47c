"""Envelope encryption, blind indexes and the key file."""

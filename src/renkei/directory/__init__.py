"""Organisations, professionals, professions and the org-admin user lifecycle."""

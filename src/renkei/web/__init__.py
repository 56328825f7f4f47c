"""Templating, layout, static assets, i18n and shared request/response plumbing."""

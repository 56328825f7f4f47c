"""Sign-in: passwords, tokens, sessions, TOTP, CSRF and the request dependencies."""

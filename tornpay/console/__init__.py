"""The operator console's core: passwords, sessions, sign-in lockout, audit, queries."""

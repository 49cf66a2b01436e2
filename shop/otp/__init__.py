"""One-time passwords for step-up verification: issue, resend, verify, consume (SPEC 5)."""

"""`make bench`: SPEC section 8's performance figures (never part of `make test`)."""

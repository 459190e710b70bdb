"""A user's package: loan defaults (landed daily, outcomes two days late) and house prices (static)."""

"""Online scoring: the HTTP service, its request contract, hot swap, prediction log and canary."""

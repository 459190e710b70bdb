"""Online scoring: the HTTP service, its request contract, hot swap, prediction log and canary."""

# The prediction log's durability levels, what an answer waits for (see `predlog`); here, so that
# the CLI can offer them without importing the log's dependencies.
DURABILITY = ("process", "machine", "none")

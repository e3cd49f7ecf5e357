"""One sentinel per table for "a name that is surely unknown" (asserted unknown in
tests/reference/test_exact.py, so a new table row can never turn it into a known one)."""

UNKNOWN_ACTIVATION = "no_such_activation"
UNKNOWN_LOSS = "no_such_loss"

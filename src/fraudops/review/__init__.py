"""Human review: cases from decisions, the analysts' queue, verdicts → labels, users, audit."""

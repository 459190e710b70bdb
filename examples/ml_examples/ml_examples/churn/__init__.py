"""Customer churn: the problem, its simulated world and the demo that tells its story."""

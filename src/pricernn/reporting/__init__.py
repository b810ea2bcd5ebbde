"""What a run shows: the test report (report; pooled for a panel), the text a user reads (summary), figures
(plots), TensorBoard (dashboard) and the comparison of runs (leaderboard)."""

__all__ = ["dashboard", "leaderboard", "plots", "pooled", "report", "summary"]

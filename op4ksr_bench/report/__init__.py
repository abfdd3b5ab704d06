"""Aggregation of result files and the static HTML leaderboard."""

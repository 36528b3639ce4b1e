"""Deciding with fewer calls: sample sizes, sequential sweeps, leaderboards, the cheapest setup."""

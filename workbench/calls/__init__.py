"""Calls and sessions: the composition root, one call, replay, estimates and the budget."""

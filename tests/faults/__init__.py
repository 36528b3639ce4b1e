"""A fault-injection OpenAI-compatible server for the stress tests (see :mod:`.server`)."""

from .server import Action, Fault, FaultServer, Plan, Request, always, body_key, run_index

__all__ = ["Action", "Fault", "FaultServer", "Plan", "Request", "always", "body_key", "run_index"]

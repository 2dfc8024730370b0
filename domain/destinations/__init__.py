"""Destinations (target systems): their guardrails and run-time state."""

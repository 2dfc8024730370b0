"""Destinations: target systems managed at run time (registry) merged with env ones
(directory), and their guardrails and run-time state."""

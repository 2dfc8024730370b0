"""Destination kinds other than `webhook`: one module per kind, registered here by its kind."""

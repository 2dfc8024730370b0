"""Destinations: target systems managed at run time (registry), merged with env ones (directory)."""

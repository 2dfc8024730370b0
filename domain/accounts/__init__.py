"""Accounts: staff and customer users, passwords."""

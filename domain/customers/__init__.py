"""Customers: finding or creating the Customer behind an email (`ensure`), reading them
(`queries`), changing and deactivating them (`lifecycle`), their audit trail (`audit`) and
their links to user accounts (`links`)."""

from domain.customers.ensure import Adopt, EnsuredCustomer, NewCustomer, ensure_customer

__all__ = ["Adopt", "EnsuredCustomer", "NewCustomer", "ensure_customer"]

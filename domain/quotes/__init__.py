"""Quotes after the RFQ: staff pricing, negotiation messages, acceptance, expiry.

`commands` (inputs), `views` (what staff and customers read, and who may see which quote),
`lifecycle` (price, message, move: each one transaction with its events and notifications),
`acceptance` (what an accepted quote does to its customer and leads), `expiry` (the beat task's
use case). The allowed moves are data in domain/rules.py (QUOTE_TRANSITIONS).
"""

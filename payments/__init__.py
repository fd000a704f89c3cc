"""Fees, the ledger, Stripe Checkout and its webhook, refunds and reconciliation."""

"""The district's records, guardian accounts and the guardian-facing pages."""

"""State machines, staff work on them, and the audit log."""

"""PDF documents rendered with WeasyPrint: letters, confirmations, receipts, reports."""

"""tornpay's page templates (data package: the .html files beside this one)."""

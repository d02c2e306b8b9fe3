"""Storage: the peewee database and tornpay's tables."""

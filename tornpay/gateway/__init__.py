"""Gateways between the order core and WeChat Pay: one interface, API v2 and API v3 behind it."""

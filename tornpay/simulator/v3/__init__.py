"""The simulator's API v3 surface: signed JSON endpoints, /v3/certificates, encrypted notifies."""

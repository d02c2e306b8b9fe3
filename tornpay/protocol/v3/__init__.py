"""WeChat Pay API v3, pure protocol: RSA signing and verification, AES-256-GCM, certificates."""

"""WeChat Pay v2 protocol layer: signing, XML, ids and the async client (no handlers, no DB)."""

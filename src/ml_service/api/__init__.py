"""HTTP: the strict JSON reader, the three request dialects, and the ASGI application."""

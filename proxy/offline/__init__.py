"""The offline workflow: warm the cache, export and import bundles, verify, gc."""

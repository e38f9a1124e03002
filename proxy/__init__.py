"""The spm-proxy HTTP server, the pull-through service and the command line."""

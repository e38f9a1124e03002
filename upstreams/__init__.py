"""Where releases come from: git repositories and other registries."""

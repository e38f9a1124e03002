"""The registry service: one facade method per endpoint, over narrow seams."""

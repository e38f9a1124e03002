"""The registry upstream: releases from another SE-0292 registry, over aiohttp."""

from upstreams.registry.upstream import RegistryUpstream

__all__ = ["RegistryUpstream"]

"""The git upstream: releases built from SemVer tags, through dulwich."""

from upstreams.git.upstream import GitUpstream

__all__ = ["GitUpstream"]

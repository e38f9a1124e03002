"""The git upstream: releases built from SemVer tags, through dulwich."""

from upstreams.git.upstream import GitUpstream, PackageLocation

__all__ = ["GitUpstream", "PackageLocation"]

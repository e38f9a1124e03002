"""What every `Leases` implementation must do.

An implementation's test module subclasses `LeasesContract` and provides
`open_leases` (a new handle on the same storage each time, as another process
would have) and `advance(seconds)` to move the clock the leases see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from cache.leases import Leases

OpenLeases = Callable[[], Leases]


class LeasesContract:
    @pytest.fixture
    def open_leases(self) -> OpenLeases:
        raise NotImplementedError("a contract subclass provides open_leases")

    @pytest.fixture
    def advance(self) -> Callable[[float], None]:
        raise NotImplementedError("a contract subclass moves its clock")

    async def test_one_holder_at_a_time(self, open_leases: OpenLeases) -> None:
        first, second = open_leases(), open_leases()

        held = await first.acquire("fill mona.a@1.0.0", 60)

        assert held is not None
        assert await second.acquire("fill mona.a@1.0.0", 60) is None
        assert await first.acquire("fill mona.a@1.0.0", 60) is None
        assert await second.acquire("fill mona.b@1.0.0", 60) is not None

    async def test_a_released_lease_is_granted_again_with_a_larger_token(
        self, open_leases: OpenLeases
    ) -> None:
        first, second = open_leases(), open_leases()
        held = await first.acquire("k", 60)
        assert held is not None

        await first.release(held)
        again = await second.acquire("k", 60)

        assert again is not None
        assert again.token > held.token

    async def test_an_expired_lease_is_taken_over_and_the_old_holder_knows(
        self, open_leases: OpenLeases, advance: Callable[[float], None]
    ) -> None:
        first, second = open_leases(), open_leases()
        old = await first.acquire("k", 10)
        assert old is not None

        advance(11)
        new = await second.acquire("k", 10)

        assert new is not None
        assert new.token > old.token
        assert await first.renew(old, 10) is None
        await first.release(old)  # changes nothing: the lease is the new holder's
        assert await first.acquire("k", 10) is None

    async def test_renewing_keeps_the_lease(
        self, open_leases: OpenLeases, advance: Callable[[float], None]
    ) -> None:
        first, second = open_leases(), open_leases()
        held = await first.acquire("k", 10)
        assert held is not None

        advance(8)
        renewed = await first.renew(held, 10)
        advance(8)

        assert renewed is not None
        assert renewed.token == held.token
        assert await second.acquire("k", 10) is None

    async def test_concurrent_acquires_have_one_winner(self, open_leases: OpenLeases) -> None:
        handles = [open_leases() for _ in range(8)]

        granted = await asyncio.gather(*(handle.acquire("k", 60) for handle in handles))

        assert sum(lease is not None for lease in granted) == 1

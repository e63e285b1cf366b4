"""The event loop's lag probe: a stall between two wake-ups is recorded as it was."""
import asyncio

from hypothesis import given
from hypothesis import strategies as st

from sixminutes.looplag import BUCKETS, LoopLag


def test_a_stall_in_the_loop_is_recorded_as_the_lag_of_the_next_wake_up():
    now = [0.0]
    lag = LoopLag(every=0.0, clock=lambda: now[0])

    async def main():
        probe = asyncio.create_task(lag.run())
        await asyncio.sleep(0)  # the probe asks to be woken
        now[0] += 0.3           # something holds the loop for 300 ms
        for _ in range(3):
            await asyncio.sleep(0)
        probe.cancel()

    asyncio.run(main())
    assert lag.worst_ever == 0.3 and lag.take_worst() == 0.3 and lag.take_worst() == 0.0
    assert lag.count >= 2 and lag.total == 0.3
    assert dict(lag.cumulative())["0.25"] == lag.count - 1  # the others: no lag at all
    assert dict(lag.cumulative())["0.5"] == lag.count


@given(st.lists(st.floats(min_value=-0.01, max_value=5.0), max_size=50))
def test_the_histogram_counts_every_wake_up_once_in_the_first_bucket_it_fits(lags):
    probe = LoopLag()
    for value in lags:
        probe.record(value)
    buckets = probe.cumulative()
    assert [bound for bound, _ in buckets] == [*map(str, BUCKETS), "+Inf"]
    assert buckets[-1][1] == len(lags) == probe.count
    for bound, n in buckets[:-1]:
        assert n == sum(1 for value in lags if max(value, 0.0) <= float(bound))
    assert probe.worst_ever == max([0.0, *lags])

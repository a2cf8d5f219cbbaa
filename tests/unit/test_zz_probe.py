import asyncio
from hypothesis import given, settings, strategies as st

@settings(max_examples=20)
@given(st.integers())
async def test_async_given(x):
    loop = asyncio.get_running_loop()
    t = loop.create_task(asyncio.sleep(0))
    await t

def test_sync_leaves_nothing():
    pass

def test_sync_creates_loop_task():
    # a sync test can't create tasks without a loop
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass

async def test_async_leaks():
    asyncio.get_running_loop().create_task(asyncio.sleep(10), name="leaky")

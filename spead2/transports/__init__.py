"""Asyncio adapters that move bytes between the OS (or memory) and the sans-IO core."""

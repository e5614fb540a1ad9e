"""Indices of the core receive statistics in ``StreamStats`` (``stats[HEAPS]`` is ``stats["heaps"]``)."""

# Re-exported by name (``X as X``): the list of names is the core's (protocols/stats.py).
from ..protocols.stats import BATCHES as BATCHES
from ..protocols.stats import HEAPS as HEAPS
from ..protocols.stats import INCOMPLETE_HEAPS_EVICTED as INCOMPLETE_HEAPS_EVICTED
from ..protocols.stats import INCOMPLETE_HEAPS_FLUSHED as INCOMPLETE_HEAPS_FLUSHED
from ..protocols.stats import MAX_BATCH as MAX_BATCH
from ..protocols.stats import PACKETS as PACKETS
from ..protocols.stats import SEARCH_DIST as SEARCH_DIST
from ..protocols.stats import SINGLE_PACKET_HEAPS as SINGLE_PACKET_HEAPS
from ..protocols.stats import WORKER_BLOCKED as WORKER_BLOCKED

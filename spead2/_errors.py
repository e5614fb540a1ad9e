"""Exceptions shared by rings and queues.

They derive from :class:`Exception`, as the reference runtime does (its type
stubs say ``RuntimeError``; code catching ``Exception`` works with both).
"""


class Stopped(Exception):
    """The ring or queue has been stopped and everything in it has been consumed."""


class Empty(Exception):
    """A non-blocking get found nothing to return."""


class Full(Exception):
    """A non-blocking put found no room."""

"""``parse_range_list``: the ``2,3-5,8`` syntax used by command-line options."""


def parse_range_list(ranges: str) -> list[int]:
    """Expand comma-separated integers and inclusive ``a-b`` ranges.

    ``"2,3-5,8"`` → ``[2, 3, 4, 5, 8]``; ``""`` → ``[]``; a reversed range
    such as ``"5-3"`` is empty. A part that is not an integer raises
    ``ValueError`` naming it.
    """
    result: list[int] = []
    if not ranges:
        return result
    for part in ranges.split(","):
        try:
            if "-" in part[1:]:
                split = part.index("-", 1)
                first, last = int(part[:split]), int(part[split + 1 :])
                result.extend(range(first, last + 1))
            else:
                result.append(int(part))
        except ValueError:
            raise ValueError(f"invalid range {part!r} in range list {ranges!r}") from None
    return result

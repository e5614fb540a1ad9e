import pytest

from spead2 import parse_range_list


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2,3-5,8,9-11", [2, 3, 4, 5, 8, 9, 10, 11]), ("", []), ("5-3", []), ("7", [7]), ("-1", [-1])],
)
def test_parse(text, expected):
    assert parse_range_list(text) == expected


def test_bad_part_named():
    with pytest.raises(ValueError, match="'x'"):
        parse_range_list("1,x")

import pytest

from glance_features.versions import InvalidVersion, compare


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("7.2.22", "2.10", 1),
        ("2.10", "2.10.0", 0),
        ("2.9.9", "2.10", -1),
        ("0.33.3", "0.33.3", 0),
        ("2.3.0rc1", "2.3.0", -1),
        ("2.3.0.post1", "2.3.0", 1),
        ("1!0.1", "9.9", 1),
    ],
)
def test_compare_agrees_with_packaging(a: str, b: str, expected: int) -> None:
    from packaging.version import Version

    assert compare(a, b) == expected
    assert expected == (Version(a) > Version(b)) - (Version(a) < Version(b))


def test_invalid_version() -> None:
    with pytest.raises(InvalidVersion):
        compare("not-a-version", "1.0")

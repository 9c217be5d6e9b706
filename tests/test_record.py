from collections.abc import Mapping

import pytest

from glance_features._record import FrozenInstanceError, field, record, replace


@record
class Point:
    x: int
    y: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.x + self.y


def test_init_defaults_and_factories() -> None:
    p = Point(1)
    assert (p.x, p.y, p.tags, p.total) == (1, 0, {}, 1)
    assert Point(1).tags is not Point(1).tags
    assert Point(1, 2) == Point(x=1, y=2) and Point(1) != Point(2)
    assert repr(Point(1, 2, {})) == "Point(x=1, y=2, tags={})"


def test_frozen_hashable_and_replace() -> None:
    p = Point(1, 2, ())  # type: ignore[arg-type]
    with pytest.raises(FrozenInstanceError):
        p.x = 5  # type: ignore[misc]
    assert hash(p) == hash(Point(1, 2, ()))  # type: ignore[arg-type]
    q = replace(p, y=7)
    assert (q.x, q.y, p.y) == (1, 7, 2)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "missing argument 'x'"),
        ((1, 2, {}, 4), {}, "takes 3 arguments"),
        ((1,), {"x": 2}, "'x' twice"),
        ((1,), {"z": 2}, "unexpected argument 'z'"),
    ],
)
def test_bad_arguments(args: tuple[object, ...], kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)  # type: ignore[arg-type]

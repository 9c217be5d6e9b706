"""Issue 12, class 1: files the probe creates. The xattr probe file is created,
used and removed relative to one directory descriptor, so swapping the cache
directory for a symbolic link mid-probe leaves nothing anywhere; what is in
the cache directory stays as it was (only the directory's own timestamps
change); a planted ``checkme`` is never followed or written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import need
from safety_support import BOUND, HUNG, cli, fsync_held, snippet, tree, xattr_json_as_root

PROBES = 300

SWAPPER = """
import os, sys
link, targets = sys.argv[1], sys.argv[2:]
i = 0
while True:
    i += 1
    os.symlink(targets[i % 2], link + ".new")
    os.replace(link + ".new", link)  # atomic: the path always resolves to one of them
"""


def probe_files(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".glance-features-probe")]


def test_a_cache_dir_swapped_for_a_link_mid_probe_leaves_no_file_anywhere(
    tmp_path: Path,
) -> None:
    need(sys.platform == "linux", "user xattrs are tested on Linux")
    real, victim = tmp_path / "real", tmp_path / "victim"
    real.mkdir()
    victim.mkdir()
    (victim / "precious").write_text("keep")
    cache = tmp_path / "cache"
    cache.symlink_to(real)
    swapper = subprocess.Popen(
        [sys.executable, "-I", "-c", SWAPPER, str(cache), str(real), str(victim)]
    )
    try:
        code = f"""
from glance_features.checks import xattr_cache
for _ in range({PROBES}):
    xattr_cache({str(cache)!r}, "checkme")
print("done")
"""
        tests_dir = str(Path(__file__).parent)
        run = snippet(f"import sys; sys.path.insert(0, {tests_dir!r})\n" + code)
    finally:
        swapper.kill()
        swapper.wait()
    assert run.stdout.strip() == "done", run.stderr
    assert probe_files(real) == [] and probe_files(victim) == []
    assert sorted(p.name for p in victim.iterdir()) == ["precious"]


def test_the_cache_directory_keeps_its_files_times_and_attributes(tmp_path: Path) -> None:
    need(sys.platform == "linux", "user xattrs are tested on Linux")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "image").write_bytes(b"data")
    os.setxattr(cache / "image", "user.hits", b"3")
    (cache / "checkme").write_bytes(b"XXX")  # Glance's own check file, from its last start
    before = tree(cache)
    conf = tmp_path / "glance-api.conf"
    conf.write_text(f"[DEFAULT]\nimage_cache_dir = {cache}\nimage_cache_driver = xattr\n")
    run = cli("--config-file", str(conf), "--deep", "--user", "root", "--format", "json")
    assert run.returncode in (0, 1), run.stderr
    assert json.loads(run.stdout)["features"]["xattr"]["status"] in ("available", "degraded")
    assert tree(cache) == before
    assert os.getxattr(cache / "image", "user.hits") == b"3"


def test_a_planted_checkme_link_is_never_followed(tmp_path: Path) -> None:
    cache, victim = tmp_path / "cache", tmp_path / "victim"
    cache.mkdir()
    victim.write_text("precious")
    (cache / "checkme").symlink_to(victim)
    conf = tmp_path / "glance-api.conf"
    conf.write_text(f"[DEFAULT]\nimage_cache_dir = {cache}\n")
    before = tree(tmp_path)
    run = cli("--config-file", str(conf), "--user", "root", "--format", "json")
    assert run.returncode in (0, 1, 2), run.stderr
    assert tree(tmp_path) == before
    assert victim.read_text() == "precious" and os.listxattr(victim) == []


def test_a_checkme_fifo_holds_the_probe_no_longer_than_its_deadline(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    os.mkfifo(cache / "checkme")
    conf = tmp_path / "glance-api.conf"
    conf.write_text(f"[DEFAULT]\nimage_cache_dir = {cache}\n")
    run = cli(*xattr_json_as_root(conf), "--timeout", "3")
    assert run.elapsed < BOUND, run
    assert run.returncode in (0, 1, 2), run.stderr
    assert json.loads(run.stdout)["features"]["xattr"]["status"] != "available"
    assert probe_files(cache) == []


def test_a_probe_cut_off_by_its_deadline_leaves_no_file(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    conf = tmp_path / "glance-api.conf"
    conf.write_text(f"[DEFAULT]\nimage_cache_dir = {cache}\n")
    # The probe's fsync is held past the deadline: the deadline cuts it off.
    run = cli(
        *xattr_json_as_root(conf),
        "--timeout",
        "2",
        prefix=fsync_held(8),
        env=dict(os.environ),
        timeout=HUNG,
    )
    assert run.returncode in (0, 1, 2), run.stderr
    assert probe_files(cache) == []

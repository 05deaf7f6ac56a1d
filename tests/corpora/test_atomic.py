"""Leftovers of killed ``publish`` calls are reclaimed, never while their writer lives."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpora.atomic import publish, reclaim
from corpora.records import Corpus, Document
from corpora.retrieval.cache import IndexCache

REPO = Path(__file__).resolve().parents[2]
# Publishes argv[1], stopping inside ``write`` until it is killed.
WRITER = """
import sys, time
from pathlib import Path
from corpora.atomic import publish

def write(tmp):
    tmp.mkdir()
    (tmp / "part").write_text("half an index")
    print("writing", flush=True)
    time.sleep(120)

publish(Path(sys.argv[1]), write, replace=True)
"""
CORPUS = Corpus("tiny", (Document("a", "A", "Alpha."),))


@pytest.fixture
def writer(tmp_path):
    """Start a writer of ``tmp_path/entry`` that is inside ``write``; kill it on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "entry")],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
    yield proc
    proc.kill()
    proc.wait()


def hidden(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.startswith("."))


def age(path: Path, seconds: float) -> None:
    """Set the times of ``path`` and everything in it to ``seconds`` ago."""
    then = time.time() - seconds
    for parent, dirs, files in os.walk(path):
        for name in dirs + files:
            os.utime(os.path.join(parent, name), (then, then))
    os.utime(path, (then, then))


def test_publish_refuses_or_replaces_and_leaves_no_temporary_path_or_lock(tmp_path):
    def folder(text):
        return lambda path: path.mkdir() or (path / "f").write_text(text)

    entry = publish(tmp_path / "sub" / "entry", folder("one"))
    with pytest.raises(FileExistsError, match="never overwritten"):
        publish(entry, folder("two"))
    publish(entry, folder("two"), replace=True)
    assert (entry / "f").read_text() == "two"

    def fail(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish(tmp_path / "sub" / "file", fail)
    assert os.listdir(tmp_path / "sub") == ["entry"]  # hidden names listed too


def test_a_live_writer_is_never_reclaimed(tmp_path, writer):
    [lock, tmp] = hidden(tmp_path)
    assert lock.endswith(".lock") and tmp.endswith(".tmp")
    age(tmp_path / tmp, 10 * 3600)  # even when nothing changed for hours
    assert reclaim(tmp_path, max_idle_s=0) == []
    assert hidden(tmp_path) == [lock, tmp]


def test_a_killed_writer_is_reclaimed_at_once(tmp_path, writer):
    [_, tmp] = hidden(tmp_path)
    writer.kill()
    writer.wait()
    # Fresh, but its lock is free: the writer is gone.
    assert reclaim(tmp_path, max_idle_s=3600) == [tmp_path / tmp]
    assert hidden(tmp_path) == []


def test_leftovers_without_a_lock_are_reclaimed_when_idle(tmp_path):
    tmp, old = tmp_path / ".entry.0123abcd.tmp", tmp_path / ".entry.0123abcd.tmp.old"
    for folder in (tmp, old):
        folder.mkdir()
        (folder / "part").write_text("x")
    (tmp_path / ".entry.89abcdef.lock").write_text("")  # killed before it wrote anything
    unrelated = [".entry", ".entry.tmp", ".notes.txt", "entry", ".entry.0123abcd.tmp.bak"]
    for name in unrelated:
        (tmp_path / name).write_text("mine")
    assert reclaim(tmp_path, max_idle_s=60) == []  # changed a moment ago: perhaps still written
    age(tmp, 7200)
    age(old, 7200)
    (old / "part").touch()  # something in it changed: the pair waits
    assert reclaim(tmp_path, max_idle_s=60) == []
    age(old, 7200)
    age(tmp_path / ".entry.89abcdef.lock", 7200)
    assert sorted(reclaim(tmp_path, max_idle_s=60)) == [tmp, old]
    assert sorted(os.listdir(tmp_path)) == sorted(unrelated)


def test_index_cache_reclaims_killed_builds_and_spares_live_ones(tmp_path, writer):
    live = hidden(tmp_path)
    dead = tmp_path / ".bm25-0000-1111.0123abcd.tmp"
    dead.mkdir()
    age(dead, 7200)
    cache = IndexCache(tmp_path, leftover_idle_s=60)
    index, status = cache.load_or_build(
        CORPUS, "fake", {}, build=lambda: "index",
        save=lambda index, folder: (folder / "index.txt").write_text(index),
        load=lambda folder: (folder / "index.txt").read_text(),
    )
    assert (index, status) == ("index", "built")
    assert not dead.exists()
    assert hidden(tmp_path) == live

"""The storage seam: the local object store, and the events store and vault over it."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tunetrust import InputError, Settings, add_member, get_member, import_export, init_home
from tunetrust.store.events import EVENTS_SCHEMA, EventsStore
from tunetrust.store.objects import STAGED, LocalObjectStore, ObjectStore
from tunetrust.store.vault import Vault

from .factories import export_zip


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "root")


def test_put_get_list_delete(store: LocalObjectStore) -> None:
    objects: ObjectStore = store  # the local store is an ObjectStore
    objects.put("a/b/one.bin", b"1")
    objects.put("a/two.bin", b"22")
    objects.put("three", b"333")
    assert objects.list() == ["a/b/one.bin", "a/two.bin", "three"]
    assert objects.list("a") == ["a/b/one.bin", "a/two.bin"]
    assert objects.list("nothing") == []
    assert objects.get("a/two.bin") == b"22"
    with objects.open("three") as fh:
        assert fh.read() == b"333"
    assert objects.exists("a/b/one.bin") and not objects.exists("a/b")
    objects.delete("a/b/one.bin")
    assert not (store.root / "a" / "b").exists()  # an emptied prefix goes with its object
    objects.delete("a/two.bin")
    objects.delete("three")
    objects.delete("never-there")
    assert objects.list() == [] and store.root.is_dir()  # the root stays
    with pytest.raises(FileNotFoundError):
        objects.get("three")


def test_a_staged_object_is_invisible_under_its_key_until_published(
    store: LocalObjectStore,
) -> None:
    with store.stage("p/file.parquet") as sink:
        sink.write(b"new")
    assert not store.exists("p/file.parquet")
    assert store.list() == ["p/file.parquet" + STAGED]
    store.publish("p/file.parquet")
    assert store.list() == ["p/file.parquet"] and store.get("p/file.parquet") == b"new"
    with store.stage("p/other") as sink:
        sink.write(b"x")
    store.discard("p/other")
    assert store.list() == ["p/file.parquet"]
    with pytest.raises(FileNotFoundError):
        store.publish("p/never-staged")


def test_a_failed_stage_leaves_nothing(store: LocalObjectStore) -> None:
    with pytest.raises(RuntimeError), store.stage("x/y") as sink:
        sink.write(b"half")
        raise RuntimeError("writer died")
    assert store.list() == []


def test_trees_publish_at_once_and_delete_whole(store: LocalObjectStore) -> None:
    staged = store.scope(".tmp-r1")
    staged.put("data.csv", b"a,b\n")
    staged.put("manifest.json", b"{}")
    store.publish_tree(".tmp-r1", "r1")
    assert store.list() == ["r1/data.csv", "r1/manifest.json"]
    assert store.scope("r1").get("manifest.json") == b"{}"
    store.delete_tree("r1")
    store.delete_tree("not-there")
    assert store.list() == [] and list(store.root.iterdir()) == []


def test_files_and_folders_are_private_under_a_loose_umask(store: LocalObjectStore) -> None:
    old = os.umask(0o022)
    try:
        store.put("deep/er/file", b"secret")
    finally:
        os.umask(old)
    for path in (store.root / "deep", store.root / "deep" / "er"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert stat.S_IMODE((store.root / "deep" / "er" / "file").stat().st_mode) == 0o600


@pytest.mark.parametrize("key", ["", "/abs", "../up", "a/../b", "a//b", "a/./b", "a\\b"])
def test_keys_are_relative_slash_separated_names(store: LocalObjectStore, key: str) -> None:
    with pytest.raises(InputError, match="not a storage key"):
        store.put(key, b"x")


def test_the_uri_is_what_duckdb_reads(store: LocalObjectStore) -> None:
    events = EventsStore(store)
    table = pa.table({"ms_played": [1, 2, 3]})
    events.stage("p", "c.parquet", EVENTS_SCHEMA.empty_table())  # staged and published
    events.publish("p", "c.parquet")
    uri = events.uri("p", "c.parquet")
    assert uri == str((store.root / "pseudonym=p" / "c.parquet").absolute())
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{uri}')").fetchall() == [(0,)]
    with store.stage("t.parquet") as sink:
        pq.write_table(table, sink)
    store.publish("t.parquet")
    got = duckdb.sql(f"SELECT sum(ms_played) FROM read_parquet('{store.uri('t.parquet')}')")
    assert got.fetchall() == [(6,)]


def test_events_recovery_publishes_committed_and_drops_the_rest(tmp_path: Path) -> None:
    events = EventsStore(LocalObjectStore(tmp_path / "events"))
    rows = EVENTS_SCHEMA.empty_table()
    for p, f in [("a", "old"), ("b", "old"), ("c", "x")]:
        events.stage(p, f, rows)
        events.publish(p, f)
    events.stage("a", "new", rows)  # committed, the writer killed before publishing
    events.stage("b", "next", rows)  # never committed
    assert events.read("a", "new").num_rows == 0  # readers see a committed staged file
    fixed = events.recover({"a": "new", "b": "old", "d": None})
    assert fixed == 2 + 1  # a: new published and old removed; b: next removed
    assert events.objects.list() == ["pseudonym=a/new", "pseudonym=b/old", "pseudonym=c/x"]
    assert events.recover({"c": None}) == 1  # an erased member: folder and all
    assert not (tmp_path / "events" / "pseudonym=c").exists()


def test_vault_round_trip_and_recovery(tmp_path: Path) -> None:
    vault = Vault(LocalObjectStore(tmp_path / "vault"))
    key = os.urandom(32)
    assert vault.stage("p", "c1.zip.bin", key, io.BytesIO(b"raw export")) == len(b"raw export")
    assert b"".join(vault.read("p", "c1.zip.bin", key)) == b"raw export"  # committed, staged
    vault.stage("p", "c2.zip.bin", key, io.BytesIO(b"never committed"))
    assert vault.recover({"p": {"c1.zip.bin"}, "other": set()}) == 2
    assert vault.objects.list() == ["p/c1.zip.bin"]
    assert b"".join(vault.read("p", "c1.zip.bin", key)) == b"raw export"
    vault.remove_member("p")
    assert vault.objects.list() == [] and not (tmp_path / "vault" / "p").exists()


def test_a_home_keeps_todays_layout(tmp_path: Path) -> None:
    home = init_home(Settings(home=tmp_path / "h"))
    add_member(home, "ann")
    import_export(home, "ann", export_zip(tmp_path, "extended-c", 50, 1, 1))
    m = get_member(home, "ann")
    root = tmp_path / "h"
    assert home.objects.list("events") == [f"events/pseudonym={m.pseudonym}/{m.events_file}"]
    (vault_key,) = home.objects.list("vault")
    assert vault_key.startswith(f"vault/{m.pseudonym}/") and vault_key.endswith(".zip.bin")
    assert (root / vault_key).is_file() and (root / "releases").is_dir()
    assert home.events.uri(m.pseudonym, str(m.events_file)) == str(
        root / "events" / f"pseudonym={m.pseudonym}" / str(m.events_file)
    )
    home.close()

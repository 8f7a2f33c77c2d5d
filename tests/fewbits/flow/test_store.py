"""The results store: atomic records, stable hashes, one lock per stage result."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from fewbits.flow.store import (
    Store,
    atomic_write_json,
    canonical,
    config_hash,
    read_json,
)


def test_config_hash_ignores_key_order_but_not_values():
    a = {"x": 1, "y": [1, 2], "z": {"p": "fixed:8:4"}}
    b = {"z": {"p": "fixed:8:4"}, "y": [1, 2], "x": 1}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({**a, "x": 2})
    assert canonical(a) == canonical(b)
    assert len(config_hash(a)) == 16


def test_atomic_write_never_leaves_a_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "rec.json"
    atomic_write_json(path, {"v": 1})

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_json(path, {"v": 2, "big": "x" * 100000})
    monkeypatch.undo()
    assert read_json(path) == {"v": 1}  # the old record, whole
    assert [p.name for p in tmp_path.iterdir()] == ["rec.json"]  # and no temporary left behind


def test_stage_and_point_records_round_trip(tmp_path):
    s = Store(tmp_path / "res")
    s.init()
    assert s.get_stage("train", "abc") is None
    s.put_stage("train", "abc", {"status": "ok", "result": {"test_error": 1.5}})
    s.put_point("k1", {"key": "k1", "status": "ok"})
    s.put_point("k0", {"key": "k0", "status": "failed"})
    assert s.get_stage("train", "abc")["result"]["test_error"] == 1.5
    assert [p["key"] for p in s.points()] == ["k0", "k1"]
    assert s.rel(s.stage_dir("train", "abc") / "f.txt") == "stages/train/abc/f.txt"


def test_stale_temporaries_are_removed(tmp_path):
    s = Store(tmp_path)
    s.init()
    (tmp_path / "points" / ".x.json.123.tmp").write_text("{trunc")
    assert s.remove_stale_temporaries() == 1
    assert s.points() == []


def test_lock_is_exclusive_between_threads(tmp_path):
    s = Store(tmp_path)
    order = []

    def worker(name):
        with s.lock("synth", "k"):
            order.append((name, "in"))
            time.sleep(0.2)
            order.append((name, "out"))

    ts = [threading.Thread(target=worker, args=(n,)) for n in "ab"]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    # no interleaving: each holder leaves before the next enters
    assert [o[1] for o in order] == ["in", "out", "in", "out"]
    assert order[0][0] == order[1][0]


def test_records_are_valid_json_with_sorted_keys(tmp_path):
    p = atomic_write_json(tmp_path / "a.json", {"b": 1, "a": 2})
    assert list(json.loads(p.read_text())) == ["a", "b"]


def _seal_test_store(tmp_path):
    from fewbits.flow.store import Store

    lines = []
    s = Store(tmp_path / "r", on_damage=lines.append)
    s.init()
    s.put_stage("train", "k1", {"status": "ok", "stage": "train", "key": "k1", "result": {"test_error": 5.04}})
    return s, lines


@pytest.mark.parametrize("damage", ["truncated", "edited", "mistyped", "array"])
def test_a_damaged_record_is_named_once_and_not_trusted(tmp_path, damage):
    s, lines = _seal_test_store(tmp_path)
    path = s.stage_record_path("train", "k1")
    assert s.get_stage("train", "k1")["result"]["test_error"] == 5.04 and lines == []
    text = path.read_text()
    path.write_text({"truncated": text[: len(text) // 2],
                     "edited": text.replace("5.04", "1.04"),
                     "mistyped": text.replace('"status": "ok"', '"status": 1'),
                     "array": "[1, 2]"}[damage])
    assert s.get_stage("train", "k1") is None and s.get_stage("train", "k1") is None
    assert len(lines) == 1 and lines[0].startswith("fewbits: warning: damaged results record")
    assert str(path) in lines[0] and "\n" not in lines[0]


def test_records_written_before_checksums_are_still_read(tmp_path):
    from fewbits.flow.store import Store, atomic_write_json

    s = Store(tmp_path / "r")
    atomic_write_json(s.stage_record_path("synth", "k"), {"status": "ok", "stage": "synth", "key": "k", "result": {}})
    assert s.get_stage("synth", "k") == {"status": "ok", "stage": "synth", "key": "k", "result": {}}

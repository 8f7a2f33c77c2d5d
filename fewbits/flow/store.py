"""The results store of a sweep: one JSON per experiment point, one per stage result.

Why a store of small files: a sweep may be killed at any moment (SIGINT, SIGKILL,
a lost Dask worker) and must resume without recomputing or losing anything.
Every record is written atomically (a temporary file in the same directory, then
``os.replace``), so a reader sees either the old file or the whole new one, never
a truncated JSON.  Stages are cached separately, each keyed by the hash of exactly
the configuration it depends on, so changing only the synthesis target re-runs
synthesis and nothing upstream.

Layout under the results directory::

    points/<point-key>.json          one experiment point: config, status, stage keys, metrics
    stages/<stage>/<stage-key>.json  one stage result (status ok | failed, reason, result)
    stages/<stage>/<stage-key>/      that stage's artifacts (Verilog, capture, logs, ...)
    stages/<stage>/<stage-key>.lock  held (flock) while a process computes it
    status/<pid>.json                what each worker is doing right now (progress display)

Paths inside records are relative to the results directory, so a store can be
moved or shared between machines (Dask workers on shared storage).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
from pathlib import Path

from fewbits.files import atomic_write_json, atomic_write_text  # noqa: F401  (re-exported: the store's writers)

STORE_VERSION = 1


def canonical(obj) -> str:
    """The canonical JSON text of ``obj`` (sorted keys, no spaces): what hashes are taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(obj) -> str:
    """16 hex digits of sha256 over the canonical JSON of ``obj``."""
    return hashlib.sha256(canonical(obj).encode()).hexdigest()[:16]


# The JSON types of a record's fields (the first ones required): a record of other types is damaged.
STAGE_FIELDS = ({"status": str}, {"stage": str, "key": str, "result": dict, "config": dict, "inputs": dict})
POINT_FIELDS = ({"key": str, "status": str}, {"config": dict, "stages": dict, "label": str})
SEAL = "sha256"


def _digest(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != SEAL}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def sealed(record: dict) -> dict:
    """``record`` with a checksum of its content as written (what ``damage`` checks on read)."""
    plain = json.loads(json.dumps({k: v for k, v in record.items() if k != SEAL}, default=str))
    return {**plain, SEAL: _digest(plain)}


def unsealed(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != SEAL}


def damage(text: str, fields: tuple[dict, dict]) -> str | None:
    """Why a record's text cannot be trusted (None when it can): truncated, mistyped, or edited after writing."""
    try:
        rec = json.loads(text)
    except ValueError as e:
        return f"not JSON ({e.msg} at line {e.lineno}: truncated or overwritten)"
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, accepted an object"
    required, optional = fields
    for name, typ in (*required.items(), *optional.items()):
        if name not in rec and name not in required:
            continue
        if not isinstance(rec.get(name), typ):
            got = "missing" if name not in rec else f"a {type(rec[name]).__name__}"
            return f"field '{name}' is {got}, accepted a {typ.__name__}"
    if SEAL in rec and rec[SEAL] != _digest(rec):
        return "its checksum does not match its content (edited or corrupted after it was written)"
    return None


def read_json(path) -> dict | None:
    """The JSON object at ``path``, or None when it is missing (never half-written: see above)."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None


class Store:
    """A results directory (see the module docstring for its layout)."""

    def __init__(self, root, on_damage=None):
        self.root = Path(root)
        self.damaged: dict[Path, str] = {}  # record -> why it is not trusted (named once per store object)
        self.on_damage = on_damage or (lambda line: print(line, file=sys.stderr))

    # ---- paths ----------------------------------------------------------
    @property
    def points_dir(self) -> Path:
        return self.root / "points"

    def point_path(self, key: str) -> Path:
        return self.points_dir / f"{key}.json"

    def stage_record_path(self, stage: str, key: str) -> Path:
        return self.root / "stages" / stage / f"{key}.json"

    def stage_dir(self, stage: str, key: str) -> Path:
        return self.root / "stages" / stage / key

    def rel(self, path) -> str:
        """``path`` relative to the store root (how records name files)."""
        return os.path.relpath(Path(path).resolve(), self.root.resolve())

    def abs(self, rel: str) -> Path:
        return self.root / rel

    # ---- records --------------------------------------------------------
    def init(self) -> None:
        self.points_dir.mkdir(parents=True, exist_ok=True)
        meta = self.root / "store.json"
        if not meta.exists():
            atomic_write_json(meta, {"store_version": STORE_VERSION})

    def get_stage(self, stage: str, key: str) -> dict | None:
        """The stage record, or None when it is missing or damaged (then named once, and recomputed)."""
        return self._read_record(self.stage_record_path(stage, key), STAGE_FIELDS)

    def put_stage(self, stage: str, key: str, record: dict) -> None:
        atomic_write_json(self.stage_record_path(stage, key), sealed(record))

    def get_point(self, key: str) -> dict | None:
        return self._read_record(self.point_path(key), POINT_FIELDS)

    def put_point(self, key: str, record: dict) -> None:
        atomic_write_json(self.point_path(key), sealed(record))

    def points(self) -> list[dict]:
        """Every intact point record, in a stable order (by key); damaged ones are named and left out."""
        out = []
        for p in sorted(self.points_dir.glob("*.json")):
            rec = self._read_record(p, POINT_FIELDS)
            if rec is not None:
                out.append(rec)
        return out

    def _read_record(self, path: Path, fields: tuple[dict, dict]) -> dict | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        why = damage(text, fields)
        if why is None:
            return unsealed(json.loads(text))
        if path not in self.damaged:
            self.damaged[path] = why
            self.on_damage(f"fewbits: warning: damaged results record {path}: {why}; it is not used "
                           f"(a sweep recomputes it)")
        return None

    def sweep_meta(self) -> dict | None:
        return read_json(self.root / "sweep.json")

    def put_sweep_meta(self, meta: dict) -> None:
        atomic_write_json(self.root / "sweep.json", meta)

    @contextlib.contextmanager
    def lock(self, stage: str, key: str):
        """Exclusive lock on one stage result (released by the kernel if the holder dies)."""
        path = self.root / "stages" / stage / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    # ---- live status (progress of the current stage) -------------------------
    def status_path(self, pid: int | None = None) -> Path:
        return self.root / "status" / f"{os.uname().nodename}-{pid or os.getpid()}.json"

    def set_status(self, status: dict | None) -> None:
        path = self.status_path()
        if status is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            atomic_write_json(path, status)

    def statuses(self) -> list[dict]:
        out = []
        for p in sorted((self.root / "status").glob("*.json")):
            with contextlib.suppress(ValueError, OSError):
                rec = read_json(p)
                if rec:
                    out.append(rec)
        return out

    def clear_statuses(self) -> None:
        for p in (self.root / "status").glob("*.json"):
            with contextlib.suppress(OSError):
                p.unlink()

    def remove_stale_temporaries(self) -> int:
        """Delete temp files left by a killed writer (they were never visible as records)."""
        n = 0
        for p in self.root.rglob(".*.tmp"):
            with contextlib.suppress(OSError):
                p.unlink()
                n += 1
        return n

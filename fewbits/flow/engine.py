"""The sweep engine: every point through every stage, cached, resumable, local or on Dask.

Why this shape: a point is one call, ``run_point(point, results_dir)``, that
only reads and writes the results store, so it runs the same in this process,
in a local process pool (``--workers N``) or on a Dask distributed cluster
(``--scheduler tcp://host:port``, the store on shared storage).  Resuming is not
a mode: finished stage records are simply found in the store and reused, and a
lock per stage result stops two workers computing the same one (points that
differ only downstream share their upstream stages).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path

from fewbits.flow import stages as st
from fewbits.flow.store import Store, config_hash

POINT_VERSION = 1


def one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg if len(msg) < 2000 else msg[:2000] + " ..."


def point_key(point: dict) -> str:
    return config_hash({"point_version": POINT_VERSION, **point})


def point_label(point: dict) -> str:
    """What a person calls the point: ``fixed:12:8 -> fixed:16:12`` plus its knob (a part sweep's: its format)."""
    if point.get("kind") == "parts":
        return point["format"]
    lab = point["prop"] if point["prop"] == point["update"] else f"{point['prop']} / {point['update']}"
    if point.get("family") == "dfixed" and point.get("max_overflow") is not None:
        lab += f" (ovf {point['max_overflow']:g})"
    if point.get("acc"):
        lab += f" (acc {point['acc']})"
    return lab


def stage_key(inst: st.Instance, keys: dict) -> str:
    return config_hash({"stage": inst.stage.name, "version": inst.stage.version, "config": inst.config,
                        "inputs": {n: keys[inst.source(n)] for n in inst.needs}})


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children waited for so far.

    Why: a stage record's ``seconds`` is wall time, which on a shared machine says more about
    the load than about the stage; its ``cpu_seconds`` (the difference over the stage) is what
    the stage costs.  Exact where a worker runs one stage at a time (the local pool, a single
    process); threads of one process running stages side by side (a threaded Dask worker) share it.
    """
    import resource

    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _run_stage(store: Store, inst: st.Instance, key: str, inputs: dict, point: dict, retry_failed: bool) -> dict:
    base = inst.stage.name

    def usable(rec):
        return rec is not None and (rec.get("status") == "ok" or (rec.get("status") == "failed" and not retry_failed))

    rec = store.get_stage(base, key)
    if usable(rec):
        return rec
    with store.lock(base, key):
        rec = store.get_stage(base, key)  # another worker may have finished it while we waited
        if usable(rec):
            return rec
        work = store.stage_dir(base, key)
        if work.exists() and not inst.stage.resumable:
            shutil.rmtree(work)  # what a killed run left: never part of a record
        work.mkdir(parents=True, exist_ok=True)
        store.set_status({"point": point_label(point), "stage": inst.name, "since": time.time(), "pid": os.getpid()})
        t0, c0 = time.time(), cpu_seconds()
        try:
            result = inst.stage.run(inst.config, inputs, work, store)
            rec = {"status": "ok", "result": result}
        except Exception as e:  # noqa: BLE001 - a failed stage is a result; KeyboardInterrupt is not
            rec = {"status": "failed", "reason": one_line(e), "error": type(e).__name__,
                   "traceback": traceback.format_exc(limit=8)}
        finally:
            store.set_status(None)
        rec.update({"stage": base, "instance": inst.name, "key": key, "config": inst.config,
                    "inputs": {n: inputs[n]["key"] for n in inst.needs}, "seconds": round(time.time() - t0, 3),
                    "cpu_seconds": round(cpu_seconds() - c0, 3), "finished_at": time.time()})
        store.put_stage(base, key, rec)
        return rec


def run_point(point: dict, results_dir, retry_failed: bool = False) -> dict:
    """Run (or find in the store) every stage of ``point``; write and return its point record."""
    store = Store(results_dir)
    key = point_key(point)
    stages_out: dict[str, dict] = {}
    records: dict[str, dict] = {}
    keys: dict[str, str] = {}
    status, failed_stage, reason = "ok", None, None
    for inst in st.plan(point):
        blocked = [inst.source(n) for n in inst.needs
                   if inst.source(n) not in records or records[inst.source(n)].get("status") != "ok"]
        if status == "failed":
            stages_out[inst.name] = {"status": "skipped", "reason": f"{failed_stage} failed"}
            continue
        if blocked:
            stages_out[inst.name] = {"status": "unavailable",
                                     "reason": f"needs {', '.join(blocked)} ({stages_out[blocked[0]]['reason']})"}
            status = "partial"
            continue
        missing = inst.stage.available()
        if missing:
            stages_out[inst.name] = {"status": "unavailable", "reason": missing}
            status = "partial"
            continue
        k = stage_key(inst, keys)
        rec = _run_stage(store, inst, k, {n: records[inst.source(n)] for n in inst.needs}, point, retry_failed)
        keys[inst.name], records[inst.name] = k, rec
        entry = {"status": rec["status"], "stage": inst.stage.name, "key": k, "seconds": rec.get("seconds")}
        if rec["status"] == "ok":
            summ = inst.stage.summary
            entry["summary"] = summ(rec["result"]) if summ else {}
        elif inst.borrowed:  # another point's failure: what needs it is unavailable here, this point not failed
            entry["reason"] = f"{inst.name} failed: {rec.get('reason')}"
        else:
            entry["reason"] = rec.get("reason")
            status, failed_stage, reason = "failed", inst.name, rec.get("reason")
        stages_out[inst.name] = entry
    record = {"key": key, "label": point_label(point), "config": point, "status": status,
              "failed_stage": failed_stage, "reason": f"{failed_stage}: {reason}" if failed_stage else None,
              "stages": stages_out}
    store.put_point(key, record)
    return record


# ---------------------------------------------------------------- the whole sweep

class Interrupted(Exception):
    """A sweep stopped by Ctrl-C or SIGTERM; SIGINT is left ignored (the caller is exiting: ``exit_interrupted``)."""

    def __init__(self, done: int, total: int):
        super().__init__(f"interrupted: {done} of {total} points finished and kept; "
                         "run the same command again to finish the rest")
        self.done, self.total = done, total


def exit_interrupted(e: Interrupted):
    """Say what was kept and exit with status 130, ignoring any further Ctrl-C from here on.

    A second SIGINT (a user pressing Ctrl-C twice) landing while the interpreter shuts down
    killed the process by the signal (status -2, no message about the kept points) instead.
    """
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(f"fewbits: {e}", file=sys.stderr, flush=True)
    raise SystemExit(130) from None


def _worker_init():
    import torch

    torch.set_num_threads(1)


def _status_line(store: Store, t_now: float) -> str:
    parts = [f"{s.get('stage')}: {s.get('point')} ({t_now - s.get('since', t_now):.0f}s)" for s in store.statuses()]
    return "  |  ".join(parts) if parts else "waiting for workers"


def _terminate_pool(ex) -> None:
    for p in list(getattr(ex, "_processes", {}).values()):
        with contextlib.suppress(Exception):
            p.kill()
    with contextlib.suppress(Exception):
        ex.shutdown(wait=False, cancel_futures=True)


def run_sweep(points: list[dict], results_dir, *, workers: int = 1, scheduler: str | None = None,
              progress: bool = True, retry_failed: bool = False, meta: dict | None = None) -> list[dict]:
    """Run ``points`` (skipping finished work); returns their point records in input order.

    Raises ``Interrupted`` on Ctrl-C / SIGTERM after stopping the workers.
    """
    client = None
    if scheduler:  # connect first: an unreachable scheduler is an error before any work
        from distributed import Client

        client = Client(scheduler, timeout="20s")
    store = Store(results_dir)
    store.init()
    store.remove_stale_temporaries()
    store.clear_statuses()
    keys = [point_key(p) for p in points]
    store.put_sweep_meta({**(meta or {}), "points": keys, "n_points": len(keys)})
    # points whose every stage already finished need no worker at all
    todo = [i for i, k in enumerate(keys) if retry_failed or not _finished(store, k, points[i])]
    results: dict[int, dict] = {i: store.get_point(keys[i]) for i in range(len(points)) if i not in todo}
    bar = status = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(points), initial=len(results), desc="sweep", unit="point", dynamic_ncols=True,
                   file=sys.stderr)
        status = tqdm(total=0, bar_format="{desc}", position=1, leave=False, dynamic_ncols=True, file=sys.stderr)
    old_term, old_int = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread (e.g. called from a Dask worker)
        signal.signal(signal.SIGTERM, on_term)
    ex, futs, interrupted = None, {}, False
    try:
        if not todo:
            pass
        elif client is not None:
            futs = {i: client.submit(run_point, points[i], str(Path(results_dir).resolve()), retry_failed,
                                     key=f"fewbits-point-{keys[i]}-{os.getpid()}-{time.time_ns()}", pure=False)
                    for i in todo}
            _drain(futs, results, store, bar, status)
        elif workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                     initializer=_worker_init)
            futs = {i: ex.submit(run_point, points[i], str(results_dir), retry_failed) for i in todo}
            _drain(futs, results, store, bar, status)
            ex.shutdown()
        else:
            for i in todo:
                if status is not None:
                    status.set_description_str(f"  {point_label(points[i])}")
                results[i] = run_point(points[i], results_dir, retry_failed)
                if bar is not None:
                    bar.update(1)
    except KeyboardInterrupt:
        # a second Ctrl-C must not break off the clean-up below nor the caller's exit (exit_interrupted):
        # SIGINT stays ignored once this sweep raised Interrupted
        interrupted = True
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if ex is not None:
            _terminate_pool(ex)
        if client is not None:
            with contextlib.suppress(Exception):
                client.cancel(list(futs.values()), force=True)
        raise Interrupted(len(results), len(points)) from None
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, old_term)
            if not interrupted:
                signal.signal(signal.SIGINT, old_int)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if status is not None:
            status.close()
        if bar is not None:
            bar.close()
        store.clear_statuses()
    return [results[i] for i in range(len(points))]


def _finished(store: Store, key: str, point: dict) -> bool:
    """True when the point record exists, nothing in it could now run further, and its stage keys are current.

    A stage whose version or inputs changed has a new key, so its point runs again (only that stage
    and what follows it recompute; the rest is found in the store).
    """
    rec = store.get_point(key)
    if rec is None or rec.get("status") == "partial":  # a missing stage may have landed since
        return False
    keys: dict = {}
    for inst in st.plan(point):
        keys[inst.name] = stage_key(inst, keys)
        s = rec["stages"].get(inst.name)
        if s is None or ("key" in s and s["key"] != keys[inst.name]):
            return False
        if "key" in s and store.get_stage(s.get("stage", inst.stage.name), s["key"]) is None:
            return False  # its record is gone or damaged: recompute it rather than trust the point
    return True


def _drain(futs: dict, results: dict, store: Store, bar, status) -> None:
    """Wait for futures (concurrent or Dask), updating the two progress lines; errors become failed points."""
    pending = dict(futs)
    while pending:
        for i, f in list(pending.items()):
            if f.done():
                del pending[i]
                try:
                    results[i] = f.result()
                except KeyboardInterrupt:
                    raise
                except Exception as e:  # the worker process itself died: record it, go on
                    results[i] = {"status": "failed", "reason": f"worker: {one_line(e)}", "key": None}
                if bar is not None:
                    bar.update(1)
        if status is not None:
            status.set_description_str("  " + _status_line(store, time.time()))
        if pending:
            time.sleep(0.3)

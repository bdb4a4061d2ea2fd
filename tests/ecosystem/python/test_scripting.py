"""Scripting through real libraries that run Lua on the server:

- redis-py's Lock (release, extend and reacquire are Lua scripts run with EVALSHA, loaded on NOSCRIPT):
  acquire/release, blocking acquire with a timeout, extend, reacquire, a lock owned by another token cannot be
  released/extended, and threads incrementing a counter under the lock (exact result).
- RQ (unique enqueue/schedule, the scheduler lock and Queue.empty are Lua scripts; Queue.empty touches job keys
  it does not declare): enqueue jobs, run a burst worker, check results and statuses, a failing job lands in the
  failed registry; scheduled jobs run by a burst worker with its scheduler.
"""

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import redis
from redis.exceptions import LockError, LockNotOwnedError
from rq import Queue, Worker
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus


def _conn(server, **kw):
    return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=10, **kw)


# ---------------------------------------------------------------------------------------------------------------
# redis-py Lock


def test_lock_acquire_release(r):
    lock = r.lock("lk", timeout=10)
    assert lock.acquire(blocking=False) is True
    assert lock.locked() is True
    assert lock.owned() is True
    token = lock.local.token
    assert r.get("lk") == token.decode()
    ttl = r.pttl("lk")
    assert 9000 < ttl <= 10000
    lock.release()
    assert lock.locked() is False
    assert r.exists("lk") == 0
    # Releasing again: the lock object has no token any more.
    with pytest.raises(LockError, match="Cannot release an unlocked lock"):
        lock.release()
    # Context manager; no timeout means no TTL.
    with r.lock("lk2") as held:
        assert held.owned()
        assert r.ttl("lk2") == -1
    assert r.exists("lk2") == 0


def test_lock_blocking_acquire_with_timeout(r, server):
    holder = r.lock("blk", timeout=10, thread_local=False)  # released from another thread below
    assert holder.acquire(blocking=False)

    other = _conn(server, decode_responses=True).lock("blk", timeout=10, sleep=0.01)
    assert other.acquire(blocking=False) is False
    t0 = time.monotonic()
    assert other.acquire(blocking=True, blocking_timeout=0.3) is False
    waited = time.monotonic() - t0
    assert 0.28 <= waited < 2.0, waited
    # The context manager raises when it cannot acquire within blocking_timeout.
    with pytest.raises(LockError, match="Unable to acquire lock"):
        with r.lock("blk", blocking_timeout=0.1, sleep=0.01):
            pass

    # Released by the holder from another thread while `other` waits: `other` gets it within its timeout.
    timer = threading.Timer(0.2, holder.release)
    timer.start()
    t0 = time.monotonic()
    assert other.acquire(blocking=True, blocking_timeout=5) is True
    waited = time.monotonic() - t0
    timer.join()
    assert 0.15 <= waited < 4.0, waited
    assert other.owned() and not holder.owned()
    other.release()

    # A lock whose holder never releases it is free again after its timeout (the key expires).
    stale = r.lock("exp", timeout=0.2)
    assert stale.acquire(blocking=False)
    taker = r.lock("exp", timeout=5, sleep=0.01)
    assert taker.acquire(blocking=True, blocking_timeout=3) is True
    taker.release()


def test_lock_extend_and_reacquire(r):
    lock = r.lock("ext", timeout=2)
    assert lock.acquire(blocking=False)
    assert lock.extend(3) is True  # adds to the remaining TTL
    ttl = r.pttl("ext")
    assert 4000 < ttl <= 5000, ttl
    assert lock.extend(10, replace_ttl=True) is True
    ttl = r.pttl("ext")
    assert 9000 < ttl <= 10000, ttl
    assert lock.reacquire() is True  # back to the lock's own timeout
    ttl = r.pttl("ext")
    assert 1000 < ttl <= 2000, ttl
    lock.release()

    # A lock without a timeout cannot be extended (checked by redis-py before any script runs).
    forever = r.lock("forever")
    assert forever.acquire(blocking=False)
    with pytest.raises(LockError, match="Cannot extend a lock with no timeout"):
        forever.extend(1)
    forever.release()

    # extend on a key without TTL (e.g. set by someone else with the same token): the script refuses.
    lock = r.lock("ext2", timeout=5)
    assert lock.acquire(blocking=False, token="tok")
    r.persist("ext2")
    with pytest.raises(LockNotOwnedError, match="Cannot extend a lock that's no longer owned"):
        lock.extend(1)
    lock.release()


def test_lock_owned_by_another_token(r, server):
    mine = r.lock("own", timeout=10)
    assert mine.acquire(blocking=False, token="token-a")
    assert r.get("own") == "token-a"

    # Same name, another token: cannot release, extend or reacquire it; the key is untouched.
    intruder = _conn(server, decode_responses=True).lock("own", timeout=10)
    intruder.local.token = b"token-b"
    assert intruder.owned() is False
    with pytest.raises(LockNotOwnedError, match="Cannot release a lock that's no longer owned"):
        intruder.release()
    intruder.local.token = b"token-b"
    with pytest.raises(LockNotOwnedError, match="Cannot extend a lock that's no longer owned"):
        intruder.extend(5)
    with pytest.raises(LockNotOwnedError, match="Cannot reacquire a lock that's no longer owned"):
        intruder.reacquire()
    assert r.get("own") == "token-a"
    assert 9000 < r.pttl("own") <= 10000
    assert mine.owned()
    mine.release()

    # The holder's lock expired and someone else took it: the old holder cannot release it.
    old = r.lock("own2", timeout=0.1)
    assert old.acquire(blocking=False)
    time.sleep(0.25)
    new = r.lock("own2", timeout=10)
    assert new.acquire(blocking=False)
    with pytest.raises(LockNotOwnedError):
        old.release()
    assert new.owned()
    new.release()
    assert r.exists("own2") == 0


def test_lock_contention_counter(r, server):
    threads_n, per_thread = 8, 40
    errors = []

    def work():
        c = _conn(server, decode_responses=True)
        try:
            for _ in range(per_thread):
                with c.lock("ctr-lock", timeout=10, sleep=0.001, blocking_timeout=30):
                    # A non-atomic read-modify-write: correct only under mutual exclusion.
                    v = int(c.get("ctr") or 0)
                    c.set("ctr", v + 1)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))
        finally:
            c.close()

    ts = [threading.Thread(target=work) for _ in range(threads_n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not any(t.is_alive() for t in ts)
    assert errors == []
    assert r.get("ctr") == str(threads_n * per_thread)
    assert r.exists("ctr-lock") == 0


# ---------------------------------------------------------------------------------------------------------------
# RQ. The job functions live in this module: the worker imports them by name (test_scripting.add), and the
# work horse it forks inherits the already imported module.


def add(a, b):
    return a + b


def boom(msg):
    raise ValueError(msg)


def test_rq_burst_worker(server):
    conn = _conn(server)  # RQ wants bytes (decode_responses=False)
    conn.flushall()
    try:
        q = Queue("scripting", connection=conn)
        jobs = [q.enqueue(add, i, 2 * i) for i in range(20)]
        failing = q.enqueue(boom, "rq job failed on purpose")
        # Unique enqueue is a Lua script (EXISTS + HSET + EXPIRE + RPUSH).
        uniq = q.enqueue(add, 100, 1, job_id="unique-1", unique=True)
        with pytest.raises(DuplicateJobError):
            q.enqueue(add, 100, 2, job_id="unique-1", unique=True)
        assert q.count == 22
        assert all(j.get_status() == JobStatus.QUEUED for j in jobs)

        worker = Worker([q], connection=conn)
        assert worker.work(burst=True) is True
        assert q.count == 0

        for i, job in enumerate(jobs):
            job.refresh()
            assert job.get_status() == JobStatus.FINISHED, (job.id, job.get_status())
            assert job.return_value() == 3 * i
            assert Job.fetch(job.id, connection=conn).return_value() == 3 * i
        uniq.refresh()
        assert uniq.get_status() == JobStatus.FINISHED
        assert uniq.return_value() == 101

        failing.refresh()
        assert failing.get_status() == JobStatus.FAILED
        assert failing.id in q.failed_job_registry
        assert q.failed_job_registry.count == 1
        result = failing.latest_result()
        assert result is not None and result.type == result.Type.FAILED
        assert "ValueError: rq job failed on purpose" in result.exc_string
        assert q.finished_job_registry.count == 21
        assert set(q.finished_job_registry.get_job_ids()) == {j.id for j in jobs} | {"unique-1"}

        # Requeue the failed job: it fails again and is back in the failed registry.
        q.failed_job_registry.requeue(failing.id)
        assert q.count == 1
        Worker([q], connection=conn).work(burst=True)
        assert failing.get_status() == JobStatus.FAILED
        assert failing.id in q.failed_job_registry
    finally:
        conn.close()


def test_rq_queue_empty_script(server):
    """Queue.empty() is a Lua script that pops every job id and deletes job keys it did not declare."""
    conn = _conn(server)
    conn.flushall()
    try:
        q = Queue("to-empty", connection=conn)
        jobs = [q.enqueue(add, i, i) for i in range(7)]
        assert q.count == 7
        assert all(conn.exists(j.key) for j in jobs)
        assert q.empty() == 7
        assert q.count == 0
        assert not any(conn.exists(j.key) for j in jobs)
        assert q.empty() == 0
        # The queue still works afterwards.
        job = q.enqueue(add, 20, 22)
        Worker([q], connection=conn).work(burst=True)
        assert job.get_status() == JobStatus.FINISHED
        assert job.return_value() == 42
    finally:
        conn.close()


def test_rq_scheduled_jobs_with_scheduler(server):
    """Scheduled jobs: unique scheduling (a Lua script) and the scheduler's lock (acquire-or-refresh and release
    scripts), run by a burst worker with_scheduler=True."""
    conn = _conn(server)
    conn.flushall()
    try:
        q = Queue("sched", connection=conn)
        # Due in 4 s: far enough that the first burst worker (slow to start on a loaded machine) runs
        # before it.
        later = q.enqueue_in(timedelta(seconds=4), add, 1, 1)
        at = datetime.now(timezone.utc) + timedelta(seconds=4)
        uniq = q.enqueue_at(at, add, 2, 2, job_id="sched-u", unique=True)
        with pytest.raises(DuplicateJobError):
            q.enqueue_at(at, add, 3, 3, job_id="sched-u", unique=True)
        assert later.get_status() == JobStatus.SCHEDULED
        assert uniq.get_status() == JobStatus.SCHEDULED
        assert q.scheduled_job_registry.count == 2
        assert q.count == 0

        # Not due yet: the burst worker's scheduler pass leaves them scheduled.
        Worker([q], connection=conn).work(burst=True, with_scheduler=True)
        assert later.get_status() == JobStatus.SCHEDULED

        time.sleep(max(0.0, (at - datetime.now(timezone.utc)).total_seconds()) + 0.3)
        Worker([q], connection=conn).work(burst=True, with_scheduler=True)
        assert later.get_status() == JobStatus.FINISHED
        assert later.return_value() == 2
        assert uniq.get_status() == JobStatus.FINISHED
        assert uniq.return_value() == 4
        assert q.scheduled_job_registry.count == 0
        # The scheduler released its lock (token-checked release script).
        assert conn.keys("rq:scheduler-lock:*") == []
    finally:
        conn.close()

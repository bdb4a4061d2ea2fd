'use strict';
// Scripting through real libraries that run Lua on the server:
// - BullMQ (every queue operation is a Lua script, most of them touch keys they do not declare): a Queue and two
//   Workers processing 1,000 jobs (each exactly once), a delayed job, retry after failure (attempts: 3),
//   `completed`/`failed` events through QueueEvents (XREAD BLOCK on the events stream), job counts at the end;
//   pause/resume/remove/clean/obliterate.
// - rate-limiter-flexible's RateLimiterRedis on ioredis (its consume is an EVALSHA of an INCRBY + PTTL script,
//   with EVAL as the fallback on NOSCRIPT): consume until blocked, remaining points and msBeforeNext, reset after
//   the duration, blockDuration (MULTI path), get/delete/reward/penalty, and concurrent consumes from several
//   connections (exactly `points` pass: the script is atomic).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { Queue, Worker, QueueEvents } = require('bullmq');
const { RateLimiterRedis, RateLimiterRes } = require('rate-limiter-flexible');
const { startServer, sleep } = require('./server');

let server;
let r;
const opts = (extra = {}) => ({
  host: '127.0.0.1',
  port: server.port,
  maxRetriesPerRequest: 1,
  retryStrategy: () => null,
  ...extra,
});
// BullMQ wants maxRetriesPerRequest: null on the connections it blocks on (Worker, QueueEvents).
const bullConnection = () => ({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: null });

before(async () => {
  server = await startServer();
  r = new Redis(opts());
});

after(async () => {
  if (r) r.disconnect();
  if (server) {
    const alive = server.alive();
    await server.stop();
    assert.ok(alive, 'the server died during the tests');
  }
});

// Resolves when `pred()` is true (polled), rejects after `ms`.
async function until(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await sleep(20);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

// Closes BullMQ objects even when an assertion failed, so that the test process can exit.
async function closeAll(...objs) {
  await Promise.allSettled(objs.filter(Boolean).map((o) => o.close()));
}

test('BullMQ: two workers process 1,000 jobs; results, events and job counts', { timeout: 60000 }, async () => {
  await r.flushall();
  const name = 'bulk';
  let queue;
  const workers = [];
  let events;
  try {
    queue = new Queue(name, { connection: bullConnection() });
    events = new QueueEvents(name, { connection: bullConnection() });
    await events.waitUntilReady();
    // QueueEvents reads the events stream from `$`: make sure its blocking XREAD is in place before jobs exist.
    await sleep(200);

    const completedEvents = new Map();
    events.on('completed', ({ jobId, returnvalue }) => completedEvents.set(jobId, returnvalue));

    const N = 1000;
    const jobs = await queue.addBulk(
      Array.from({ length: N }, (_, i) => ({ name: 'square', data: { n: i } })),
    );
    assert.equal(jobs.length, N);
    assert.equal(new Set(jobs.map((j) => j.id)).size, N);
    assert.equal(await queue.getWaitingCount(), N);

    // Two workers on their own connections compete for the jobs: each job must run exactly once.
    const runs = new Map();
    const processor = async (job) => {
      assert.equal(job.name, 'square');
      runs.set(job.data.n, (runs.get(job.data.n) || 0) + 1);
      return { n: job.data.n, sq: job.data.n * job.data.n };
    };
    let workerCompleted = 0;
    const workerErrors = [];
    for (let w = 0; w < 2; w++) {
      const wk = new Worker(name, processor, { connection: bullConnection(), concurrency: 20 });
      wk.on('completed', () => { workerCompleted += 1; });
      wk.on('failed', (job, err) => workerErrors.push(`job ${job && job.id} failed: ${err && err.message}`));
      wk.on('error', (err) => workerErrors.push(`worker error: ${err && err.message}`));
      workers.push(wk);
    }

    await until(async () => workerErrors.length > 0 || (await queue.getCompletedCount()) === N, 45000,
      `${N} completed jobs`);
    assert.deepEqual(workerErrors, []);
    assert.equal(runs.size, N);
    assert.deepEqual([...runs.values()].filter((c) => c !== 1), [], 'every job ran exactly once');
    await until(() => completedEvents.size === N && workerCompleted === N, 10000,
      'a completed event for every job');

    // Return values: through the `completed` events and stored on the job hashes.
    for (const job of jobs) {
      const rv = completedEvents.get(job.id);
      const v = typeof rv === 'string' ? JSON.parse(rv) : rv;
      assert.deepEqual(v, { n: job.data.n, sq: job.data.n * job.data.n }, `returnvalue of job ${job.id}`);
    }
    for (const i of [0, 1, 499, 998, 999]) {
      const job = await queue.getJob(jobs[i].id);
      assert.deepEqual(job.returnvalue, { n: i, sq: i * i });
      assert.equal(await job.getState(), 'completed');
      assert.equal(job.attemptsMade, 1);
      assert.ok(job.finishedOn >= job.processedOn && job.processedOn >= job.timestamp);
    }

    const counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed', 'paused');
    assert.deepEqual(counts, { waiting: 0, active: 0, completed: N, failed: 0, delayed: 0, paused: 0 });
    const completed = await queue.getCompleted(0, -1);
    assert.equal(completed.length, N);
  } finally {
    await closeAll(...workers, events, queue);
  }
});

test('BullMQ: delayed job, retry after failure, failed job and events', { timeout: 30000 }, async () => {
  await r.flushall();
  const name = 'misc';
  let queue;
  let worker;
  let events;
  try {
    queue = new Queue(name, { connection: bullConnection() });
    events = new QueueEvents(name, { connection: bullConnection() });
    await events.waitUntilReady();
    await sleep(200);
    const completedEvents = new Map();
    const failedEvents = new Map();
    events.on('completed', ({ jobId, returnvalue }) => completedEvents.set(jobId, returnvalue));
    events.on('failed', ({ jobId, failedReason }) => failedEvents.set(jobId, failedReason));

    const ranAt = new Map();
    const attempts = new Map();
    worker = new Worker(
      name,
      async (job) => {
        attempts.set(job.name, (attempts.get(job.name) || 0) + 1);
        if (job.name === 'delayed') {
          ranAt.set(job.id, Date.now());
          return 'late';
        }
        if (job.name === 'flaky') {
          if (job.attemptsMade < 2) throw new Error(`flaky failure ${job.attemptsMade + 1}`);
          return `ok after ${job.attemptsMade} failures`;
        }
        if (job.name === 'doomed') throw new Error('always fails');
        return 'plain';
      },
      { connection: bullConnection(), concurrency: 4 },
    );
    const workerFailed = [];
    worker.on('failed', (job, err) => workerFailed.push([job.name, err.message]));
    await worker.waitUntilReady();

    const DELAY = 1500;
    const t0 = Date.now();
    const delayed = await queue.add('delayed', { x: 1 }, { delay: DELAY });
    assert.equal(await delayed.getState(), 'delayed');
    assert.equal(await queue.getDelayedCount(), 1);
    const flaky = await queue.add('flaky', {}, { attempts: 3 });
    const doomed = await queue.add('doomed', {}, { attempts: 2 });
    const plain = await queue.add('plain', {});

    await until(() => completedEvents.has(flaky.id) && completedEvents.has(plain.id)
      && failedEvents.has(doomed.id), 15000, 'the flaky, plain and doomed jobs');
    // The delayed job has not run yet (unless this machine is very slow).
    if (Date.now() - t0 < DELAY - 200) assert.equal(await delayed.getState(), 'delayed');
    await until(() => completedEvents.has(delayed.id), 15000, 'the delayed job');

    // Delayed: ran after its delay (BullMQ's delay granularity is a few ms; allow 50 ms for clock rounding).
    assert.ok(ranAt.get(delayed.id) - t0 >= DELAY - 50,
      `delayed job ran ${ranAt.get(delayed.id) - t0} ms after being added (delay ${DELAY})`);
    assert.equal(completedEvents.get(delayed.id), 'late');
    assert.equal(attempts.get('delayed'), 1);

    // Retry: fails twice, succeeds on the third attempt.
    assert.equal(attempts.get('flaky'), 3);
    const flakyJob = await queue.getJob(flaky.id);
    assert.equal(await flakyJob.getState(), 'completed');
    assert.equal(flakyJob.returnvalue, 'ok after 2 failures');
    assert.equal(flakyJob.attemptsMade, 3);
    assert.equal(completedEvents.get(flaky.id), 'ok after 2 failures');
    assert.ok(!failedEvents.has(flaky.id), 'no final failed event for a job that succeeded on retry');

    // Failing for good after its attempts: in the failed set, with its reason; a `failed` event.
    assert.equal(attempts.get('doomed'), 2);
    const doomedJob = await queue.getJob(doomed.id);
    assert.equal(await doomedJob.getState(), 'failed');
    assert.equal(doomedJob.failedReason, 'always fails');
    assert.equal(doomedJob.attemptsMade, 2);
    assert.equal(failedEvents.get(doomed.id), 'always fails');
    const failed = await queue.getFailed();
    assert.deepEqual(failed.map((j) => j.id), [doomed.id]);

    // The worker's `failed` event fires on every failed attempt.
    assert.deepEqual(workerFailed.sort(), [
      ['doomed', 'always fails'], ['doomed', 'always fails'],
      ['flaky', 'flaky failure 1'], ['flaky', 'flaky failure 2'],
    ]);

    const counts = await queue.getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
    assert.deepEqual(counts, { waiting: 0, active: 0, completed: 3, failed: 1, delayed: 0 });

    // Retrying the failed job by hand (Job.retry is a script too): it runs and fails again.
    await doomedJob.retry();
    await until(async () => (await doomedJob.getState()) === 'failed' && attempts.get('doomed') === 3, 10000,
      'the retried doomed job to fail again');
  } finally {
    await closeAll(worker, events, queue);
  }
});

test('BullMQ: pause/resume, remove, clean and obliterate', { timeout: 30000 }, async () => {
  await r.flushall();
  const queue = new Queue('admin', { connection: bullConnection() });
  try {
    await queue.pause();
    assert.equal(await queue.isPaused(), true);
    const jobs = await queue.addBulk(Array.from({ length: 10 }, (_, i) => ({ name: 'j', data: { i } })));
    const counts = await queue.getJobCounts('waiting', 'paused');
    assert.equal(counts.waiting + counts.paused, 10);
    await jobs[0].remove();
    assert.equal(await queue.getJob(jobs[0].id), undefined);
    await queue.resume();
    assert.equal(await queue.isPaused(), false);
    assert.equal(await queue.getWaitingCount(), 9);
    const cleaned = await queue.clean(0, 100, 'wait');
    assert.equal(cleaned.length, 9);
    assert.equal(await queue.getWaitingCount(), 0);
    await queue.add('j', {});
    await queue.obliterate({ force: true });
    const left = await r.keys('bull:admin:*');
    assert.deepEqual(left, []);
  } finally {
    await closeAll(queue);
  }
});

test('rate-limiter-flexible RateLimiterRedis: consume until blocked, remaining points, reset after duration',
  { timeout: 20000 }, async () => {
    await r.flushall();
    const client = new Redis(opts({ enableOfflineQueue: false }));
    try {
      // rate-limiter-flexible's recommended ioredis setup: no offline queue, so wait until the client is ready.
      if (client.status !== 'ready') {
        await new Promise((res, rej) => { client.once('ready', res); client.once('error', rej); });
      }
      const POINTS = 5;
      const DURATION = 2; // seconds
      const limiter = new RateLimiterRedis({
        storeClient: client,
        useRedisPackage: false,
        keyPrefix: 'rlflx',
        points: POINTS,
        duration: DURATION,
      });
      const t0 = Date.now();
      for (let i = 1; i <= POINTS; i++) {
        const res = await limiter.consume('user1');
        assert.ok(res instanceof RateLimiterRes);
        assert.equal(res.consumedPoints, i);
        assert.equal(res.remainingPoints, POINTS - i);
        assert.equal(res.isFirstInDuration, i === 1);
        const elapsed = Date.now() - t0;
        assert.ok(res.msBeforeNext <= DURATION * 1000 && res.msBeforeNext >= DURATION * 1000 - elapsed - 100,
          `msBeforeNext ${res.msBeforeNext} after ${elapsed} ms`);
      }
      // The key as the script left it: the counter with a TTL of the duration.
      assert.equal(await r.get('rlflx:user1'), String(POINTS));
      const pttl = await r.pttl('rlflx:user1');
      assert.ok(pttl > 0 && pttl <= DURATION * 1000, `pttl ${pttl}`);

      // Blocked: rejects with a RateLimiterRes (not an Error).
      let rejected;
      try {
        await limiter.consume('user1');
        assert.fail('the 6th consume must be rejected');
      } catch (e) {
        rejected = e;
      }
      assert.ok(rejected instanceof RateLimiterRes, `rejected with ${rejected}`);
      assert.equal(rejected.remainingPoints, 0);
      assert.equal(rejected.consumedPoints, POINTS + 1);
      assert.ok(rejected.msBeforeNext > 0 && rejected.msBeforeNext <= DURATION * 1000,
        `msBeforeNext ${rejected.msBeforeNext}`);

      // Another key is independent; consuming several points at once.
      const other = await limiter.consume('user2', 3);
      assert.equal(other.consumedPoints, 3);
      assert.equal(other.remainingPoints, 2);
      await assert.rejects(limiter.consume('user2', 3), (e) => e instanceof RateLimiterRes && e.remainingPoints === 0);

      // get / reward / penalty / delete.
      const got = await limiter.get('user1');
      assert.equal(got.consumedPoints, POINTS + 1);
      assert.ok(got.msBeforeNext > 0 && got.msBeforeNext <= DURATION * 1000);
      assert.equal(await limiter.get('nobody'), null);
      const rewarded = await limiter.reward('user2', 2);
      assert.equal(rewarded.consumedPoints, 4);
      const penalised = await limiter.penalty('user2', 1);
      assert.equal(penalised.consumedPoints, 5);
      assert.equal(await limiter.delete('user2'), true);
      assert.equal(await limiter.get('user2'), null);

      // After the duration the window resets.
      await sleep(Math.max(0, DURATION * 1000 + 150 - (Date.now() - t0)));
      const fresh = await limiter.consume('user1');
      assert.equal(fresh.consumedPoints, 1);
      assert.equal(fresh.remainingPoints, POINTS - 1);
      assert.equal(fresh.isFirstInDuration, true);
      assert.ok(fresh.msBeforeNext > DURATION * 1000 - 200 && fresh.msBeforeNext <= DURATION * 1000,
        `msBeforeNext ${fresh.msBeforeNext}`);
    } finally {
      client.disconnect();
    }
  });

test('rate-limiter-flexible RateLimiterRedis: blockDuration and the NOSCRIPT fallback after SCRIPT FLUSH',
  { timeout: 20000 }, async () => {
    await r.flushall();
    const client = new Redis(opts());
    try {
      const limiter = new RateLimiterRedis({
        storeClient: client,
        useRedisPackage: false,
        keyPrefix: 'rlblock',
        points: 2,
        duration: 1,
        blockDuration: 3,
      });
      await limiter.consume('ip');
      await limiter.consume('ip');
      const t0 = Date.now();
      await assert.rejects(limiter.consume('ip'), (e) => e instanceof RateLimiterRes
        && e.msBeforeNext > 2500 && e.msBeforeNext <= 3000);
      const pttl = await r.pttl('rlblock:ip');
      assert.ok(pttl > 2500 && pttl <= 3000, `blocked key pttl ${pttl}`);
      // Still blocked after the 1 s duration has passed: the block lasts 3 s.
      await sleep(1200);
      await assert.rejects(limiter.consume('ip'), (e) => e instanceof RateLimiterRes
        && e.msBeforeNext > 0 && e.msBeforeNext <= 3000 - (Date.now() - t0) + 100);

      // ioredis sends EVALSHA; after SCRIPT FLUSH the server answers NOSCRIPT and ioredis falls back to EVAL.
      assert.equal(await r.script('FLUSH'), 'OK');
      const res = await limiter.consume('other');
      assert.equal(res.consumedPoints, 1);
      assert.equal(res.remainingPoints, 1);
    } finally {
      client.disconnect();
    }
  });

test('rate-limiter-flexible RateLimiterRedis: concurrent consumes from several connections, exactly `points` pass',
  { timeout: 20000 }, async () => {
    await r.flushall();
    const clients = Array.from({ length: 4 }, () => new Redis(opts()));
    try {
      const POINTS = 50;
      const limiters = clients.map((client) => new RateLimiterRedis({
        storeClient: client, useRedisPackage: false, keyPrefix: 'rlconc', points: POINTS, duration: 30,
      }));
      const results = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) => limiters[i % limiters.length].consume('shared')),
      );
      const passed = results.filter((x) => x.status === 'fulfilled');
      const blocked = results.filter((x) => x.status === 'rejected');
      assert.equal(passed.length, POINTS);
      assert.equal(blocked.length, 200 - POINTS);
      assert.ok(blocked.every((x) => x.reason instanceof RateLimiterRes), 'rejections are RateLimiterRes');
      // Every consume saw a distinct counter value: the script's SET NX + INCRBY + PTTL ran atomically.
      const consumed = results.map((x) => (x.status === 'fulfilled' ? x.value : x.reason).consumedPoints);
      assert.deepEqual(consumed.sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1));
      assert.equal(await r.get('rlconc:shared'), '200');
      const ttl = await r.ttl('rlconc:shared');
      assert.ok(ttl > 25 && ttl <= 30, `ttl ${ttl}`);
    } finally {
      clients.forEach((c) => c.disconnect());
    }
  });

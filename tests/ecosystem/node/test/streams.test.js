'use strict';
// Streams with ioredis: the stream commands through ioredis's API, consumer groups, the reliable job-queue
// pattern (workers on their own connections, one crashes without acking, another takes over its pending entries
// with XAUTOCLAIM; every job processed and acknowledged exactly once) and the event-log pattern (XADD MAXLEN ~,
// a follower blocked in XREAD on `$` woken by XADD).
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { startServer, sleep } = require('./server');

let server;
let r;
const opts = () => ({
  host: '127.0.0.1',
  port: server.port,
  maxRetriesPerRequest: 1,
  retryStrategy: () => null,
});

// [[id, [f, v, ...]], ...] -> [{ id, f: v }]
const entries = (list) => list.map(([id, kv]) => {
  const o = { id };
  for (let i = 0; i < kv.length; i += 2) o[kv[i]] = kv[i + 1];
  return o;
});
const pairs = (arr) => {
  const o = {};
  for (let i = 0; i < arr.length; i += 2) o[arr[i]] = arr[i + 1];
  return o;
};

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

test('XADD / XRANGE / XREVRANGE / XLEN / XDEL / XTRIM', async () => {
  await r.flushall();
  const ids = [];
  for (let i = 0; i < 10; i++) ids.push(await r.xadd('s', '*', 'f1', 'v1', 'f2', String(i)));
  assert.equal(new Set(ids).size, 10);
  assert.equal(await r.xlen('s'), 10);
  const all = entries(await r.xrange('s', '-', '+'));
  assert.deepEqual(all.map((e) => e.id), ids);
  assert.deepEqual(all[3], { id: ids[3], f1: 'v1', f2: '3' });
  assert.deepEqual(entries(await r.xrange('s', `(${ids[2]}`, '+', 'COUNT', 2)).map((e) => e.id), ids.slice(3, 5));
  assert.deepEqual(entries(await r.xrevrange('s', '+', '-', 'COUNT', 3)).map((e) => e.id), ids.slice(7).reverse());
  assert.equal(await r.xdel('s', ids[0], ids[1], '0-1'), 2);
  assert.equal(await r.xtrim('s', 'MAXLEN', 5), 3);
  assert.equal(await r.xtrim('s', 'MINID', '=', ids[7]), 2);
  assert.deepEqual(entries(await r.xrange('s', '-', '+')).map((e) => e.id), ids.slice(7));
  assert.equal(await r.xadd('e', '5-1', 'a', '1'), '5-1');
  assert.equal(await r.xadd('e', '5-*', 'a', '2'), '5-2');
  await assert.rejects(r.xadd('e', '5-2', 'a', '3'), /equal or smaller than the target stream top item/);
  assert.equal(await r.xadd('nope', 'NOMKSTREAM', '*', 'a', '1'), null);
  assert.equal(await r.exists('nope'), 0);
});

test('XREAD BLOCK on $ is woken by XADD from another connection', async () => {
  await r.flushall();
  await r.xadd('ev', '*', 'x', '0');
  const reader = new Redis(opts());
  const t0 = Date.now();
  const p = reader.xread('BLOCK', 5000, 'STREAMS', 'ev', '$');
  await sleep(200);
  const id = await r.xadd('ev', '*', 'x', '1');
  const res = await p;
  assert.ok(Date.now() - t0 < 2000);
  assert.deepEqual(res, [['ev', [[id, ['x', '1']]]]]);
  assert.equal(await reader.xread('BLOCK', 100, 'STREAMS', 'ev', '$'), null);
  reader.disconnect();
});

test('consumer groups: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO', async () => {
  await r.flushall();
  assert.equal(await r.xgroup('CREATE', 'q', 'g', '$', 'MKSTREAM'), 'OK');
  await assert.rejects(r.xgroup('CREATE', 'q', 'g', '$'), /BUSYGROUP/);
  const ids = [];
  for (let i = 0; i < 6; i++) ids.push(await r.xadd('q', '*', 'job', String(i)));
  const a = await r.xreadgroup('GROUP', 'g', 'alice', 'COUNT', 4, 'STREAMS', 'q', '>');
  assert.deepEqual(entries(a[0][1]).map((e) => e.id), ids.slice(0, 4));
  const b = await r.xreadgroup('GROUP', 'g', 'bob', 'STREAMS', 'q', '>');
  assert.deepEqual(entries(b[0][1]).map((e) => e.id), ids.slice(4));
  const [count, min, max, consumers] = await r.xpending('q', 'g');
  assert.deepEqual([count, min, max], [6, ids[0], ids[5]]);
  assert.deepEqual(consumers, [['alice', '4'], ['bob', '2']]);
  const ext = await r.xpending('q', 'g', '-', '+', 10, 'alice');
  assert.deepEqual(ext.map((p) => [p[0], p[1], p[3]]), ids.slice(0, 4).map((id) => [id, 'alice', 1]));
  assert.equal(await r.xack('q', 'g', ids[0], ids[1]), 2);
  assert.deepEqual(await r.xclaim('q', 'g', 'bob', 0, ids[2]), [[ids[2], ['job', '2']]]);
  assert.deepEqual(await r.xclaim('q', 'g', 'bob', 0, ids[3], 'JUSTID'), [ids[3]]);
  await r.xdel('q', ids[5]);
  const [next, taken, deleted] = await r.xautoclaim('q', 'g', 'carol', 0, '0-0', 'COUNT', 10);
  assert.equal(next, '0-0');
  assert.deepEqual(taken.map((m) => m[0]), ids.slice(2, 5));
  assert.deepEqual(deleted, [ids[5]]);
  const info = pairs(await r.xinfo('STREAM', 'q'));
  assert.equal(info.length, 5);
  assert.equal(info.groups, 1);
  assert.equal(info['last-generated-id'], ids[5]);
  const groups = (await r.xinfo('GROUPS', 'q')).map(pairs);
  assert.equal(groups[0].name, 'g');
  assert.equal(groups[0].pending, 3);
  assert.equal(groups[0]['entries-read'], 6);
  const cons = Object.fromEntries((await r.xinfo('CONSUMERS', 'q', 'g')).map(pairs).map((c) => [c.name, c]));
  assert.deepEqual(Object.keys(cons).sort(), ['alice', 'bob', 'carol']);
  assert.equal(cons.carol.pending, 3);
  assert.equal(await r.xgroup('DESTROY', 'q', 'g'), 1);
  await assert.rejects(r.xreadgroup('GROUP', 'g', 'alice', 'STREAMS', 'q', '>'), /NOGROUP/);
});

test('job queue: a crashed worker\'s jobs are reclaimed with XAUTOCLAIM; each job acked exactly once', async () => {
  await r.flushall();
  const N = 300;
  await r.xgroup('CREATE', 'jobs', 'workers', '0', 'MKSTREAM');
  for (let i = 0; i < N; i++) await r.xadd('jobs', '*', 'job', String(i), 'payload', 'xxxxxxxx');

  const crasher = new Redis(opts());
  const stolen = await crasher.xreadgroup('GROUP', 'workers', 'crasher', 'COUNT', 25, 'STREAMS', 'jobs', '>');
  const stolenIds = stolen[0][1].map((m) => m[0]);
  assert.equal(stolenIds.length, 25);
  crasher.disconnect(); // crash: the connection goes away, nothing acked

  const processed = new Map();
  const acked = new Map();
  const minIdle = 200;
  const worker = async (name, reclaim) => {
    const c = new Redis(opts());
    let idle = 0;
    let lastReclaim = 0;
    for (;;) {
      let batch = [];
      const res = await c.xreadgroup('GROUP', 'workers', name, 'COUNT', 10, 'BLOCK', 100, 'STREAMS', 'jobs', '>');
      if (res) batch = res[0][1];
      if (reclaim && Date.now() - lastReclaim > 50) {
        lastReclaim = Date.now();
        const [, claimed] = await c.xautoclaim('jobs', 'workers', name, minIdle, '0-0', 'COUNT', 50);
        batch = batch.concat(claimed);
      }
      if (batch.length === 0) {
        idle += 1;
        const [pending] = await c.xpending('jobs', 'workers');
        if ((pending === 0 && idle > 3) || idle > 200) break;
        continue;
      }
      idle = 0;
      for (const [id, kv] of batch) {
        const job = pairs(kv).job;
        processed.set(job, (processed.get(job) || 0) + 1);
        acked.set(id, (acked.get(id) || 0) + (await c.xack('jobs', 'workers', id)));
      }
    }
    c.disconnect();
  };
  await Promise.all([worker('w0', true), worker('w1', false), worker('w2', false), worker('w3', false)]);

  assert.equal(processed.size, N);
  assert.ok([...processed.values()].every((v) => v === 1));
  assert.equal(acked.size, N);
  assert.ok([...acked.values()].every((v) => v === 1));
  for (const id of stolenIds) assert.equal(acked.get(id), 1);
  const [pending] = await r.xpending('jobs', 'workers');
  assert.equal(pending, 0);
  const groups = (await r.xinfo('GROUPS', 'jobs')).map(pairs);
  assert.equal(groups[0].lag, 0);
});

test('event log: XADD MAXLEN ~ and a follower tailing with XREAD BLOCK from $', async () => {
  await r.flushall();
  const pipe = r.pipeline();
  for (let i = 0; i < 5000; i++) pipe.xadd('log', 'MAXLEN', '~', 1000, '*', 'type', 'click', 'n', String(i));
  await pipe.exec();
  const len = await r.xlen('log');
  assert.ok(len >= 1000 && len < 5000, `length ${len}`);

  const follower = new Redis(opts());
  const seen = [];
  const tail = (async () => {
    let last = '$';
    while (seen.length < 50) {
      const res = await follower.xread('COUNT', 100, 'BLOCK', 5000, 'STREAMS', 'log', last);
      if (!res) break;
      for (const [id, kv] of res[0][1]) {
        seen.push(Number(pairs(kv).n));
        last = id;
      }
    }
  })();
  await sleep(200);
  for (let i = 5000; i < 5050; i++) {
    await r.xadd('log', 'MAXLEN', '~', 1000, '*', 'type', 'click', 'n', String(i));
    if (i % 10 === 0) await sleep(5);
  }
  await tail;
  follower.disconnect();
  assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => 5000 + i));
});

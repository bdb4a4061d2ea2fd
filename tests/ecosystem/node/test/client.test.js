'use strict';
// ioredis features against the server under test: pipelines, multi-key commands, SET options, buffers,
// SCAN streams, errors.
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { startServer, sleep } = require('./server');

let server;
let redis;

before(async () => {
  server = await startServer();
  redis = new Redis({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: 1 });
});

after(async () => {
  if (redis) await redis.quit();
  if (server) {
    const alive = server.alive();
    await server.stop();
    assert.ok(alive, 'the server died during the tests');
  }
});

beforeEach(async () => {
  await redis.flushall();
});

test('pipeline: results and per-command errors', async () => {
  await redis.set('str', 'abc');
  const res = await redis
    .pipeline()
    .set('a', '1')
    .incr('a')
    .incrby('a', 10)
    .get('a')
    .setex('b', 100, 'x')
    .ttl('b')
    .get('missing')
    .incr('str')
    .del('a', 'b', 'missing')
    .exists('a')
    .exec();
  const errs = res.map(([e]) => e);
  const vals = res.map(([, v]) => v);
  assert.deepEqual(vals.slice(0, 7), ['OK', 2, 12, '12', 'OK', 100, null]);
  assert.equal(errs[7].message, 'ERR value is not an integer or out of range');
  assert.deepEqual(vals.slice(8), [2, 0]);
  assert.ok(errs.filter((e, i) => i !== 7).every((e) => e === null));
});

test('pipeline: thousands of commands, and auto-pipelined concurrent calls', async () => {
  const p = redis.pipeline();
  for (let i = 0; i < 2000; i++) p.set(`k:${i}`, String(i));
  for (let i = 0; i < 2000; i++) p.incr(`k:${i}`);
  const res = await p.exec();
  assert.equal(res.length, 4000);
  assert.ok(res.slice(0, 2000).every(([e, v]) => e === null && v === 'OK'));
  assert.ok(res.slice(2000).every(([e, v], i) => e === null && v === i + 1));
  assert.equal(await redis.dbsize(), 2000);

  const auto = new Redis({ host: '127.0.0.1', port: server.port, enableAutoPipelining: true });
  try {
    const values = await Promise.all(Array.from({ length: 500 }, (_, i) => auto.get(`k:${i}`)));
    assert.deepEqual(values, Array.from({ length: 500 }, (_, i) => String(i + 1)));
  } finally {
    await auto.quit();
  }
});

test('multi-get: MSET / MGET / MSETNX', async () => {
  assert.equal(await redis.mset({ 'm:a': '1', 'm:b': 'two', 'm:c': '' }), 'OK');
  assert.deepEqual(await redis.mget('m:a', 'm:b', 'm:c', 'm:none'), ['1', 'two', '', null]);
  assert.deepEqual(await redis.mget(['m:a', 'm:a']), ['1', '1']);
  assert.equal(await redis.msetnx('m:a', 'x', 'm:new', 'y'), 0);
  assert.equal(await redis.get('m:new'), null);
  assert.equal(await redis.msetnx('m:new', 'y', 'm:new2', 'z'), 1);
  assert.deepEqual(await redis.mget('m:new', 'm:new2'), ['y', 'z']);
  await assert.rejects(redis.call('MSET', 'a'), { message: "ERR wrong number of arguments for 'mset' command" });
});

test('cache-aside batch: pipelined GET misses, SETEX fills, MGET hits', async () => {
  const ids = [1, 2, 3];
  const misses = await redis.pipeline(ids.map((i) => ['get', `user:${i}`])).exec();
  assert.deepEqual(misses, [[null, null], [null, null], [null, null]]);
  await redis.pipeline(ids.map((i) => ['setex', `user:${i}`, 300, JSON.stringify({ id: i })])).exec();
  const hits = await redis.mget(ids.map((i) => `user:${i}`));
  assert.deepEqual(hits.map((h) => JSON.parse(h).id), ids);
});

test('SET options', async () => {
  assert.equal(await redis.set('s', 'v1'), 'OK');
  assert.equal(await redis.set('s', 'v2', 'NX'), null);
  assert.equal(await redis.set('s', 'v2', 'XX'), 'OK');
  assert.equal(await redis.set('none', 'v', 'XX'), null);
  assert.equal(await redis.set('s', 'v3', 'GET'), 'v2');
  assert.equal(await redis.set('s', 'v4', 'EX', 100), 'OK');
  assert.equal(await redis.ttl('s'), 100);
  assert.equal(await redis.set('s', 'v5', 'KEEPTTL'), 'OK');
  assert.equal(await redis.ttl('s'), 100);
  assert.equal(await redis.set('s', 'v6', 'PX', 50000), 'OK');
  assert.equal(await redis.ttl('s'), 50);
  assert.equal(await redis.set('s', 'v7', 'EXAT', 4000000000), 'OK');
  assert.equal(await redis.expiretime('s'), 4000000000);
  await assert.rejects(redis.set('s', 'v', 'EX', 0), { message: "ERR invalid expire time in 'set' command" });
  await assert.rejects(redis.call('SET', 's', 'v', 'NX', 'XX'), { message: 'ERR syntax error' });
  assert.equal(await redis.get('s'), 'v7');
  await redis.set('short', 'v', 'PX', 100);
  await sleep(250);
  assert.equal(await redis.get('short'), null);
});

test('strings: APPEND GETRANGE SETRANGE GETDEL GETEX INCRBYFLOAT LCS', async () => {
  assert.equal(await redis.append('str', 'Hello'), 5);
  assert.equal(await redis.append('str', ' World'), 11);
  assert.equal(await redis.getrange('str', -5, -1), 'World');
  assert.equal(await redis.setrange('str', 6, 'Redis'), 11);
  assert.equal(await redis.getdel('str'), 'Hello Redis');
  assert.equal(await redis.getdel('str'), null);
  await redis.set('gx', 'v');
  assert.equal(await redis.getex('gx', 'EX', 100), 'v');
  assert.equal(await redis.ttl('gx'), 100);
  assert.equal(await redis.getex('gx', 'PERSIST'), 'v');
  assert.equal(await redis.ttl('gx'), -1);
  await redis.set('f', '10.50');
  assert.equal(await redis.incrbyfloat('f', 0.1), '10.6');
  assert.equal(await redis.incrbyfloat('f', -5), '5.6');
  await redis.mset('lcs1', 'ohmytext', 'lcs2', 'mynewtext');
  assert.equal(await redis.lcs('lcs1', 'lcs2'), 'mytext');
  assert.equal(await redis.lcs('lcs1', 'lcs2', 'LEN'), 6);
});

test('binary values with Buffer commands', async () => {
  const payload = Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 256));
  assert.equal(await redis.set(Buffer.from('bin\x00key'), payload), 'OK');
  const got = await redis.getBuffer(Buffer.from('bin\x00key'));
  assert.ok(Buffer.isBuffer(got));
  assert.ok(got.equals(payload));
  assert.equal(await redis.strlen(Buffer.from('bin\x00key')), 1024);
  const big = 'x'.repeat(1024 * 1024);
  await redis.set('big', big);
  assert.equal((await redis.get('big')).length, big.length);
});

test('keys: SCAN stream, EXPIRE options, RENAME, COPY, TYPE', async () => {
  const pairs = {};
  for (let i = 0; i < 300; i++) pairs[`scan:${i}`] = String(i);
  await redis.mset(pairs);
  await redis.set('other', 'x');
  const seen = new Set();
  await new Promise((resolve, reject) => {
    const stream = redis.scanStream({ match: 'scan:*', count: 20 });
    stream.on('data', (keys) => keys.forEach((k) => seen.add(k)));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  assert.equal(seen.size, 300);
  assert.ok(!seen.has('other'));
  assert.equal(await redis.type('other'), 'string');
  assert.equal(await redis.type('nope'), 'none');
  assert.equal(await redis.expire('other', 100), 1);
  assert.equal(await redis.expire('other', 200, 'NX'), 0);
  assert.equal(await redis.expire('other', 200, 'GT'), 1);
  assert.equal(await redis.ttl('other'), 200);
  assert.equal(await redis.persist('other'), 1);
  assert.equal(await redis.rename('other', 'renamed'), 'OK');
  await assert.rejects(redis.rename('nope', 'x'), { message: 'ERR no such key' });
  assert.equal(await redis.copy('renamed', 'copied'), 1);
  assert.equal(await redis.get('copied'), 'x');
  assert.equal(await redis.unlink('renamed', 'copied'), 2);
  assert.equal(await redis.dbsize(), 300);
});

test('connection: PING ECHO SELECT CLIENT SETNAME, unknown command error', async () => {
  assert.equal(await redis.ping(), 'PONG');
  assert.equal(await redis.echo('hi'), 'hi');
  const db3 = new Redis({ host: '127.0.0.1', port: server.port, db: 3, connectionName: 'node-db3' });
  try {
    await db3.set('in3', 'v');
    assert.equal(await redis.get('in3'), null);
    assert.equal(await db3.get('in3'), 'v');
    assert.equal(await db3.client('GETNAME'), 'node-db3');
  } finally {
    await db3.quit();
  }
  await assert.rejects(redis.call('NOSUCHCMD', 'x', 'y'), {
    message: "ERR unknown command 'NOSUCHCMD', with args beginning with: 'x' 'y' ",
  });
  assert.deepEqual(await redis.config('GET', 'databases'), ['databases', '16']);
});

'use strict';
// The seed's patterns (seed/redis-in-2026.txt) with real ioredis against the server under test:
// pattern 1 (cache-aside with SETEX/GET/DEL and JSON) and pattern 3 (rate limiting with INCR + EXPIRE).
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

// A fake database that counts its queries.
function makeDb() {
  const users = {
    1: { id: 1, name: 'Ada Lovelace', roles: ['admin'], active: true },
    2: { id: 2, name: 'Grace Hopper', roles: [], active: false, meta: { score: 12.5, tags: null } },
    3: { id: 3, name: 'Zoë 🚀 Ünïcødé', roles: ['a'], active: true },
  };
  const db = {
    queries: 0,
    users,
    async query(id) { db.queries++; return users[id] ? JSON.parse(JSON.stringify(users[id])) : null; },
    async update(id, data) { db.queries++; Object.assign(users[id], data); },
  };
  return db;
}

// ---- Pattern 1: cache-aside, as in the seed
async function getCachedUser(db, userId, ttl = 300) {
  const cacheKey = `user:${userId}`;
  const cached = await redis.get(cacheKey);
  if (cached) {
    return JSON.parse(cached);
  }
  const user = await db.query(userId);
  await redis.setex(cacheKey, ttl, JSON.stringify(user));
  return user;
}

async function updateUser(db, userId, data) {
  await db.update(userId, data);
  await redis.del(`user:${userId}`);
}

test('cache-aside: miss, then hits without touching the database', async () => {
  const db = makeDb();
  const first = await getCachedUser(db, 1);
  assert.deepEqual(first, db.users[1]);
  assert.equal(db.queries, 1);
  assert.deepEqual(JSON.parse(await redis.get('user:1')), db.users[1]);
  const ttl = await redis.ttl('user:1');
  assert.ok(ttl >= 299 && ttl <= 300, `ttl ${ttl}`);
  for (let i = 0; i < 5; i++) assert.deepEqual(await getCachedUser(db, 1), first);
  assert.equal(db.queries, 1);
});

test('cache-aside: DEL on update invalidates', async () => {
  const db = makeDb();
  assert.equal((await getCachedUser(db, 2)).active, false);
  await updateUser(db, 2, { active: true });
  assert.equal(await redis.exists('user:2'), 0);
  assert.equal(await redis.get('user:2'), null);
  const fresh = await getCachedUser(db, 2);
  assert.equal(fresh.active, true);
  assert.deepEqual(fresh.meta, { score: 12.5, tags: null });
  assert.equal(db.queries, 3);
  await getCachedUser(db, 2);
  assert.equal(db.queries, 3);
  assert.equal(await redis.del('user:2', 'user:nope'), 1);
});

test('cache-aside: unicode JSON round trip', async () => {
  const db = makeDb();
  const user = await getCachedUser(db, 3);
  const raw = await redis.get('user:3');
  assert.deepEqual(JSON.parse(raw), user);
  assert.equal(await redis.strlen('user:3'), Buffer.byteLength(raw, 'utf8'));
  assert.equal(JSON.parse(raw).name, 'Zoë 🚀 Ünïcødé');
});

test('cache-aside: entries expire with their TTL', async () => {
  const db = makeDb();
  await getCachedUser(db, 1, 1);
  assert.equal(await redis.ttl('user:1'), 1);
  await sleep(1200);
  assert.equal(await redis.get('user:1'), null);
  assert.equal(await redis.ttl('user:1'), -2);
  await getCachedUser(db, 1, 1);
  assert.equal(db.queries, 2);
});

test('cache-aside with keyPrefix', async () => {
  const prefixed = new Redis({ host: '127.0.0.1', port: server.port, keyPrefix: 'app1:' });
  try {
    await prefixed.setex('user:9', 60, JSON.stringify({ id: 9 }));
    assert.deepEqual(JSON.parse(await redis.get('app1:user:9')), { id: 9 });
    assert.deepEqual(JSON.parse(await prefixed.get('user:9')), { id: 9 });
    assert.equal(await prefixed.del('user:9'), 1);
    assert.equal(await redis.exists('app1:user:9'), 0);
  } finally {
    await prefixed.quit();
  }
});

// ---- Pattern 3: rate limiting, as in the seed
async function checkRateLimit(ip, maxRequests = 100, windowSeconds = 60) {
  const key = `rate_limit:${ip}`;
  const current = await redis.incr(key);
  if (current === 1) {
    // First request — set expiry
    await redis.expire(key, windowSeconds);
  }
  return {
    allowed: current <= maxRequests,
    remaining: Math.max(0, maxRequests - current),
    total: maxRequests,
  };
}

test('rate limit: allows up to the limit, then blocks', async () => {
  const results = [];
  for (let i = 0; i < 8; i++) results.push(await checkRateLimit('10.0.0.1', 5));
  assert.deepEqual(results.map((r) => r.allowed), [true, true, true, true, true, false, false, false]);
  assert.deepEqual(results.map((r) => r.remaining), [4, 3, 2, 1, 0, 0, 0, 0]);
  assert.equal(await redis.get('rate_limit:10.0.0.1'), '8');
  const ttl = await redis.ttl('rate_limit:10.0.0.1');
  assert.ok(ttl >= 59 && ttl <= 60, `ttl ${ttl}`);
});

test('rate limit: clients are independent, concurrent requests are counted exactly', async () => {
  const all = await Promise.all(Array.from({ length: 50 }, () => checkRateLimit('1.1.1.1', 30)));
  assert.equal(all.filter((r) => r.allowed).length, 30);
  assert.equal(await redis.get('rate_limit:1.1.1.1'), '50');
  assert.deepEqual(await checkRateLimit('2.2.2.2', 30), { allowed: true, remaining: 29, total: 30 });
  assert.deepEqual((await redis.keys('rate_limit:*')).sort(), ['rate_limit:1.1.1.1', 'rate_limit:2.2.2.2']);
});

test('rate limit: the window expires', async () => {
  for (let i = 0; i < 3; i++) await checkRateLimit('4.4.4.4', 2, 1);
  assert.equal((await checkRateLimit('4.4.4.4', 2, 1)).allowed, false);
  await sleep(1300);
  assert.equal(await redis.get('rate_limit:4.4.4.4'), null);
  assert.deepEqual(await checkRateLimit('4.4.4.4', 2, 1), { allowed: true, remaining: 1, total: 2 });
  assert.equal(await redis.ttl('rate_limit:4.4.4.4'), 1);
});

test('rate limit: INCR keeps the TTL; only the first request sets it', async () => {
  await checkRateLimit('3.3.3.3', 100, 100);
  await redis.expire('rate_limit:3.3.3.3', 50);
  for (let i = 0; i < 10; i++) await checkRateLimit('3.3.3.3', 100, 100);
  assert.equal(await redis.ttl('rate_limit:3.3.3.3'), 50);
});

test('INCR on a non-integer string: exact Redis error', async () => {
  await redis.set('notnum', 'abc');
  await assert.rejects(redis.incr('notnum'), (err) => {
    assert.equal(err.name, 'ReplyError');
    assert.equal(err.message, 'ERR value is not an integer or out of range');
    return true;
  });
  await assert.rejects(redis.incrby('notnum', 5), { message: 'ERR value is not an integer or out of range' });
  await redis.set('max', '9223372036854775807');
  await assert.rejects(redis.incr('max'), { message: 'ERR increment or decrement would overflow' });
  await assert.rejects(redis.incrbyfloat('notnum', 1), { message: 'ERR value is not a valid float' });
  assert.equal(await redis.get('notnum'), 'abc');
});

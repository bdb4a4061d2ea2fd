'use strict';
// The seed's pattern 5 (leaderboards with sorted sets) with real ioredis against the server under test, plus
// the cheat sheet's collection uses as users write them: a list job queue (LPUSH + RPOP / LRANGE), tags in
// sets (SADD / SMEMBERS / SINTER) and user-profile hashes (HSET / HGETALL).
const { test, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { startServer } = require('./server');

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

// --- the seed's code, verbatim in spirit
async function updateScore(userId, score) {
  await redis.zadd('leaderboard', score, userId);
}

async function getTopPlayers(count = 10) {
  const results = await redis.zrevrangebyscore('leaderboard', '+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, count);
  const players = [];
  for (let i = 0; i < results.length; i += 2) {
    players.push({ userId: results[i], score: parseInt(results[i + 1], 10), rank: players.length + 1 });
  }
  return players;
}

async function getUserRank(userId) {
  const rank = await redis.zrevrank('leaderboard', userId);
  return rank !== null ? rank + 1 : null; // 1-indexed
}

// A deterministic pseudo-random generator (so failures reproduce).
function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
}

const N = 300;

async function seedBoard() {
  const next = rng(2026);
  const model = new Map();
  for (let i = 0; i < N; i++) {
    const user = `user:${i}`;
    const score = next() % 10000;
    await updateScore(user, score);
    model.set(user, score);
  }
  return model;
}

// Highest score first; ties in reverse byte order of the member (as ZREVRANGE).
function ranked(model) {
  return [...model.entries()].sort((a, b) => (b[1] - a[1]) || (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0));
}

test('leaderboard: top players, 1-indexed ranks, scores', async () => {
  const model = await seedBoard();
  assert.equal(await redis.zcard('leaderboard'), N);
  const exp = ranked(model);
  const top = await getTopPlayers(10);
  assert.deepEqual(top, exp.slice(0, 10).map(([userId, score], i) => ({ userId, score, rank: i + 1 })));
  assert.equal((await getTopPlayers(1000)).length, N);
  // Every player's rank, pipelined as a dashboard would.
  const pipe = redis.pipeline();
  for (const [user] of exp) pipe.zrevrank('leaderboard', user);
  const ranks = await pipe.exec();
  ranks.forEach(([err, rank], i) => {
    assert.equal(err, null);
    assert.equal(rank + 1, i + 1);
  });
  assert.equal(await getUserRank(exp[41][0]), 42);
  assert.equal(await getUserRank('user:unknown'), null);
  assert.equal(await redis.zscore('leaderboard', 'user:5'), String(model.get('user:5')));
  assert.equal(await redis.zscore('leaderboard', 'user:unknown'), null);
});

test('leaderboard: ZINCRBY moves players, ZADD overwrites', async () => {
  const model = await seedBoard();
  const exp = ranked(model);
  const [lastUser, lastScore] = exp[exp.length - 1];
  const best = exp[0][1];
  assert.equal(await redis.zincrby('leaderboard', best - lastScore + 1, lastUser), String(best + 1));
  assert.equal(await getUserRank(lastUser), 1);
  assert.deepEqual((await getTopPlayers(1))[0], { userId: lastUser, score: best + 1, rank: 1 });
  const topUser = exp[0][0];
  await redis.zincrby('leaderboard', -100000, topUser);
  assert.equal(await getUserRank(topUser), N);
  await updateScore(topUser, 5000.5);
  assert.equal(await redis.zscore('leaderboard', topUser), '5000.5');
  // Concurrent increments from many clients: none lost.
  const clients = Array.from({ length: 5 }, () => new Redis({ host: '127.0.0.1', port: server.port }));
  await Promise.all(clients.map(async (c) => {
    for (let i = 0; i < 20; i++) await c.zincrby('leaderboard', 1, 'user:7');
  }));
  await Promise.all(clients.map((c) => c.quit()));
  model.set('user:7', model.get('user:7') + 100);
  model.set(lastUser, best + 1);
  model.set(topUser, 5000.5);
  assert.equal(await redis.zscore('leaderboard', 'user:7'), String(model.get('user:7')));
  assert.deepEqual(await redis.zrevrange('leaderboard', 0, -1), ranked(model).map(([u]) => u));
});

test('list job queue: LPUSH + RPOP is FIFO, LRANGE peeks', async () => {
  const jobs = Array.from({ length: 100 }, (_, id) => ({ id, task: 'email', to: `u${id}@example.com` }));
  for (const job of jobs) await redis.lpush('queue:jobs', JSON.stringify(job));
  assert.equal(await redis.llen('queue:jobs'), 100);
  const recent = (await redis.lrange('queue:jobs', 0, 4)).map((j) => JSON.parse(j).id);
  assert.deepEqual(recent, [99, 98, 97, 96, 95]);
  const done = [];
  for (;;) {
    const raw = await redis.rpop('queue:jobs');
    if (raw === null) break;
    done.push(JSON.parse(raw));
  }
  assert.deepEqual(done, jobs);
  assert.equal(await redis.exists('queue:jobs'), 0);
  // Several workers draining one queue: every job exactly once.
  await redis.lpush('queue:jobs', ...Array.from({ length: 200 }, (_, i) => `j${i}`));
  const workers = Array.from({ length: 4 }, () => new Redis({ host: '127.0.0.1', port: server.port }));
  const got = await Promise.all(workers.map(async (w) => {
    const mine = [];
    for (;;) {
      const j = await w.rpop('queue:jobs');
      if (j === null) return mine;
      mine.push(j);
    }
  }));
  await Promise.all(workers.map((w) => w.quit()));
  const all = got.flat().sort();
  assert.deepEqual(all, Array.from({ length: 200 }, (_, i) => `j${i}`).sort());
  await redis.lpush('queue:jobs', 'a', 'b', 'c');
  assert.deepEqual(await redis.rpop('queue:jobs', 2), ['a', 'b']);
});

test('tags: SADD, SMEMBERS, SINTER', async () => {
  await redis.sadd('post:1:tags', 'redis', 'database', 'nosql', 'cache');
  await redis.sadd('post:2:tags', ['redis', 'rust', 'performance']);
  await redis.sadd('post:3:tags', 'python', 'redis', 'cache');
  assert.deepEqual((await redis.smembers('post:1:tags')).sort(), ['cache', 'database', 'nosql', 'redis']);
  assert.deepEqual((await redis.sinter('post:1:tags', 'post:3:tags')).sort(), ['cache', 'redis']);
  assert.deepEqual(await redis.sinter('post:1:tags', 'post:2:tags', 'post:3:tags'), ['redis']);
  assert.equal(await redis.sismember('post:2:tags', 'rust'), 1);
  assert.equal(await redis.sadd('post:2:tags', 'rust'), 0);
  assert.equal(await redis.srem('post:2:tags', 'rust', 'nope'), 1);
  assert.equal(await redis.scard('post:2:tags'), 2);
  assert.deepEqual(await redis.smembers('post:none:tags'), []);
  assert.deepEqual(await redis.sort('post:1:tags', 'ALPHA'), ['cache', 'database', 'nosql', 'redis']);
});

test('user profiles: HSET object, HGETALL, SORT BY/GET hash fields', async () => {
  const profile = { name: 'Ada Lovelace', email: 'ada@example.com', visits: '0', city: 'Zoë 🚀' };
  assert.equal(await redis.hset('user:123:profile', profile), 4);
  assert.deepEqual(await redis.hgetall('user:123:profile'), profile);
  assert.equal(await redis.hincrby('user:123:profile', 'visits', 5), 5);
  assert.equal(await redis.hset('user:123:profile', 'email', 'ada@new.example'), 0);
  assert.equal((await redis.hgetall('user:123:profile')).email, 'ada@new.example');
  assert.deepEqual(await redis.hgetall('user:none'), {});
  const names = ['carol', 'alice', 'bob'];
  for (let i = 0; i < names.length; i++) {
    await redis.hset(`user:${i}`, 'name', names[i], 'score', String(10 * (3 - i)));
    await redis.rpush('users', i);
  }
  assert.deepEqual(await redis.sort('users', 'BY', 'user:*->score', 'GET', 'user:*->name'), ['bob', 'alice', 'carol']);
  assert.deepEqual(
    await redis.sort('users', 'BY', 'user:*->name', 'ALPHA', 'DESC', 'GET', '#', 'GET', 'user:*->name'),
    ['0', 'carol', '2', 'bob', '1', 'alice'],
  );
  assert.deepEqual(await redis.sort_ro('users', 'BY', 'nosort', 'GET', 'user:*->nope'), [null, null, null]);
  assert.equal(await redis.sort('users', 'BY', 'user:*->score', 'GET', 'user:*->name', 'STORE', 'ranked'), 3);
  assert.deepEqual(await redis.lrange('ranked', 0, -1), ['bob', 'alice', 'carol']);
});

'use strict';
// The seed's pattern 4 (real-time notifications over pub/sub) with ioredis: publisher and subscriber
// connections, JSON payloads, pattern subscriptions; and Socket.IO's Redis adapter broadcasting between two
// Socket.IO servers (same process, different ports) through the server under test.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const Redis = require('ioredis');
const { Server: IOServer } = require('socket.io');
const { io: ioClient } = require('socket.io-client');
const { createAdapter } = require('@socket.io/redis-adapter');
const { startServer } = require('./server');

let server;
const opts = () => ({
  host: '127.0.0.1',
  port: server.port,
  maxRetriesPerRequest: 1,
  retryStrategy: () => null,
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function waitFor(pred, what, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      const v = pred();
      if (v) return resolve(v);
      if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) {
    const alive = server.alive();
    await server.stop();
    assert.ok(alive, 'the server died during the tests');
  }
});

test('seed pattern 4: JSON notifications from a publisher to a subscriber', async () => {
  const publisher = new Redis(opts());
  const subscriber = new Redis(opts());
  async function notifyUser(userId, message) {
    return publisher.publish(`user:${userId}:notifications`, JSON.stringify({
      type: 'notification',
      message,
      timestamp: Date.now(),
    }));
  }
  const received = [];
  subscriber.on('message', (channel, message) => {
    received.push({ channel, data: JSON.parse(message) });
  });
  assert.equal(await subscriber.subscribe('user:123:notifications'), 1);
  // ioredis refuses normal commands on a RESP2 subscriber connection; PING is allowed and answers
  // ["pong", ""] there, as from Redis.
  assert.deepEqual(await subscriber.ping(), ['pong', '']);
  for (let i = 0; i < 100; i++) assert.equal(await notifyUser(123, `m${i}`), 1);
  assert.equal(await notifyUser(456, 'nobody'), 0);
  await waitFor(() => received.length === 100, '100 messages');
  assert.deepEqual(received.map((m) => m.data.message), Array.from({ length: 100 }, (_, i) => `m${i}`));
  assert.equal(received[0].channel, 'user:123:notifications');
  assert.equal(received[0].data.type, 'notification');
  assert.equal(typeof received[0].data.timestamp, 'number');
  assert.deepEqual(await publisher.pubsub('NUMSUB', 'user:123:notifications'), ['user:123:notifications', 1]);
  await subscriber.unsubscribe();
  assert.equal(await subscriber.get('nothing'), null);
  publisher.disconnect();
  subscriber.disconnect();
});

test('pattern subscriptions (pmessage) and pipelined publishes', async () => {
  const publisher = new Redis(opts());
  const subscriber = new Redis(opts());
  const got = [];
  subscriber.on('pmessage', (pattern, channel, message) => got.push([pattern, channel, JSON.parse(message)]));
  await subscriber.psubscribe('room:*');
  const p = publisher.pipeline();
  for (let i = 0; i < 50; i++) p.publish(`room:${i % 3}`, JSON.stringify({ i }));
  const res = await p.exec();
  assert.ok(res.every(([err, n]) => err === null && n === 1));
  await waitFor(() => got.length === 50, '50 pmessages');
  assert.deepEqual(got.map((g) => g[2].i), Array.from({ length: 50 }, (_, i) => i));
  assert.equal(got[4][0], 'room:*');
  assert.equal(got[4][1], 'room:1');
  assert.equal(await publisher.pubsub('NUMPAT'), 1);
  publisher.disconnect();
  subscriber.disconnect();
});

async function ioServer(name) {
  const httpServer = http.createServer();
  const pubClient = new Redis(opts());
  const subClient = pubClient.duplicate();
  const io = new IOServer(httpServer, { adapter: createAdapter(pubClient, subClient) });
  await new Promise((r) => httpServer.listen(0, '127.0.0.1', r));
  return { name, io, httpServer, pubClient, subClient, port: httpServer.address().port };
}

test('Socket.IO redis adapter: a broadcast on server B reaches a client of server A', async () => {
  const a = await ioServer('A');
  const b = await ioServer('B');
  const client = ioClient(`http://127.0.0.1:${a.port}`, { transports: ['websocket'], reconnection: false });
  try {
    await new Promise((resolve, reject) => {
      client.once('connect', resolve);
      client.once('connect_error', reject);
    });
    // Both adapters subscribe before anything is broadcast.
    const check = new Redis(opts());
    for (let i = 0; i < 200; i++) {
      const n = await check.pubsub('NUMPAT');
      if (n >= 1) break;
      await sleep(10);
    }
    check.disconnect();
    await sleep(100);
    const got = new Promise((resolve) => client.once('news', resolve));
    b.io.emit('news', { headline: 'hello from B', n: 42 });
    const msg = await Promise.race([got, sleep(5000).then(() => null)]);
    assert.deepEqual(msg, { headline: 'hello from B', n: 42 });
    // Rooms work across servers too.
    const roomMsg = new Promise((resolve) => client.once('room-news', resolve));
    await a.io.in(client.id).socketsJoin('room1');
    b.io.to('room1').emit('room-news', 'just room1');
    assert.equal(await Promise.race([roomMsg, sleep(5000).then(() => null)]), 'just room1');
    // serverSideEmit / fetchSockets use request-response channels.
    const sockets = await b.io.fetchSockets();
    assert.equal(sockets.length, 1);
    assert.equal(sockets[0].id, client.id);
  } finally {
    client.close();
    for (const s of [a, b]) {
      await new Promise((r) => s.io.close(() => r()));
      // Let the adapter finish its own cleanup (unsubscribes) before the clients go away.
      await sleep(50);
      await s.subClient.quit().catch(() => {});
      await s.pubClient.quit().catch(() => {});
    }
  }
});

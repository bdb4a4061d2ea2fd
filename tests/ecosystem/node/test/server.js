'use strict';
// Starts the server under test: $FERRODIS_BIN (default <repo>/target/release/ferrodis) on a free port with
// `--port P --bind 127.0.0.1`, in a temporary directory; waits until it answers PING.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..', '..', '..');
const BIN = process.env.FERRODIS_BIN || path.join(REPO, 'target', 'release', 'ferrodis');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('*1\r\n$4\r\nPING\r\n'));
    sock.on('data', (d) => { buf += d.toString(); if (buf.includes('\r\n')) done(buf.startsWith('+PONG')); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startServer() {
  if (!fs.existsSync(BIN)) {
    throw new Error(`server binary ${BIN} not found: run \`cargo build --release\` first or set FERRODIS_BIN`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrodis-node-'));
  let lastLog = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const logPath = path.join(dir, `server-${port}.log`);
    const log = fs.openSync(logPath, 'w');
    const child = spawn(BIN, ['--port', String(port), '--bind', '127.0.0.1'], {
      cwd: dir,
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    let exited = false;
    child.on('exit', () => { exited = true; });
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline && !exited) {
      if (await ping(port)) {
        return {
          port,
          alive: () => !exited,
          async stop() {
            if (!exited) {
              const gone = new Promise((r) => child.once('exit', r));
              child.kill('SIGTERM');
              const t = setTimeout(() => child.kill('SIGKILL'), 10000);
              await gone;
              clearTimeout(t);
            }
            fs.rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await sleep(50);
    }
    if (!exited) child.kill('SIGKILL');
    lastLog = fs.readFileSync(logPath, 'utf8').split('\n').slice(-30).join('\n');
  }
  throw new Error(`could not start ${BIN} (5 attempts); last log:\n${lastLog}`);
}

module.exports = { startServer, sleep };

// Jest global setup: the tests that need Redis talk to a real server. Unless REDIS_URL names one,
// this starts a throwaway `redis-server` (from PATH, no persistence) on a free loopback port and
// hands its URL to every test worker through REDIS_URL; the matching teardown stops it.
import { spawn, spawnSync } from 'node:child_process';
import { createConnection, createServer } from 'node:net';

const INSTALL_HINT =
  'The tests need Redis: install redis-server (Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`) or set REDIS_URL=redis://host:port to use a running one.';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host: '127.0.0.1' });
    let answer = '';
    sock.setTimeout(500, () => sock.destroy());
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      answer += d.toString('latin1');
      if (answer.includes('\r\n')) sock.end();
    });
    sock.on('close', () => resolve(answer.startsWith('+PONG')));
    sock.on('error', () => undefined);
  });
}

export default async function startRedis() {
  if (process.env.REDIS_URL) return;
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).error) throw new Error(INSTALL_HINT);
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    let exited = false;
    proc.once('exit', () => (exited = true));
    const deadline = Date.now() + 10_000;
    while (!exited && Date.now() < deadline) {
      if (await ping(port)) {
        proc.unref();
        globalThis.__testRedis = proc;
        process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    proc.kill('SIGKILL');
    // The port was taken between the probe and the start (another run), or the server is slow: try another.
  }
  throw new Error(`redis-server did not answer on a free loopback port within 10 s (5 tries). ${INSTALL_HINT}`);
}

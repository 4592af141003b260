// Jest global teardown: stops the redis-server that spec/setup/redis.mjs started (if it started one).
export default async function stopRedis() {
  const proc = globalThis.__testRedis;
  if (!proc || proc.exitCode !== null) return;
  let timer;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 3000)))]);
  clearTimeout(timer);
  if (proc.exitCode === null) proc.kill('SIGKILL');
}

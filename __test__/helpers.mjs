// Shared helpers of the Node tests: the addon, a private FORGE_HOME, and scripted HTTP servers
// (real sockets on 127.0.0.1) for answers the embedded backend never gives (429, 5xx, garbage).
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import http from 'node:http'
import { processes } from '../scripts/sandbox-leaks.mjs'

const require = createRequire(import.meta.url)

const made = []
/**
 * A new folder `forge-<tag>-XXXXXX` in the OS's temp folder, removed once this test process
 * has exited (each test file is a process): a run leaves no folder behind. Ten runs in a row
 * once filled the disk with what they left (a pipeline test's home holds whole installed apps,
 * ~850 MB).
 */
export function tempDir(tag) {
  const dir = mkdtempSync(join(tmpdir(), `forge-${tag}-`))
  made.push(dir)
  return dir
}
// Not removed in the 'exit' handler itself: then the embedded backend's threads may still be
// writing in its home (its spare sandbox), and the removal fails (ENOTEMPTY). A detached shell
// waits for this process to be gone, then removes them (a few tries, for a sandbox's last
// processes).
process.on('exit', () => {
  if (made.length === 0) return
  const script = 'while kill -0 "$0" 2>/dev/null; do sleep 0.1; done; for i in 1 2 3 4 5; do rm -rf -- "$@" 2>/dev/null && exit 0; sleep 1; done'
  spawn('sh', ['-c', script, String(process.pid), ...made], { detached: true, stdio: 'ignore' }).unref()
})

/** Points the embedded backend at a fresh folder; call before the first local client. */
export function privateHome(tag = 'test') {
  const home = tempDir(tag)
  process.env.FORGE_HOME = home
  return home
}

export const addon = () => require('../index.js')

/**
 * The WebAssembly build as `npm run build:wasm` leaves it (linked where binding.js looks), and
 * whether this run requires it: CI (.ci/run sets FORGE_REQUIRE_WASM=1; any `CI` but false/0
 * too) must test it, so there its absence fails instead of skipping the WASI tests.
 */
export function wasmBuild() {
  const path = join(import.meta.dirname, '..', 'node_modules', '@smartapi-forge', 'daytona-wasm32-wasi', 'daytona.wasm32-wasi.wasm')
  const ci = process.env.CI
  const required = process.env.FORGE_REQUIRE_WASM === '1' || Boolean(ci && ci !== 'false' && ci !== '0')
  return { path, present: existsSync(path), required }
}

/** Whether the loaded addon is the WebAssembly build (only it has the fetch transport), as
 * under NAPI_RS_FORCE_WASI=1 (scripts/test.mjs's WASI pass). */
export const isWasi = () => typeof addon().__installFetch === 'function'

/**
 * The backend a test file's sandboxes come from, made after the servers those sandboxes must
 * reach are listening (a backend lets them reach the loopback ports in FORGE_SANDBOX_HOST_PORTS
 * as they are when it starts). Natively: the embedded backend of this process
 * (`backend: 'local'`, on the FORGE_HOME of `privateHome`). The WebAssembly build has no
 * embedded backend (asking for it is DAYTONA_LOCAL_UNSUPPORTED): there a native `forge local`
 * is started for the file, and the client gets its URL and key, as a user of that build runs
 * it. Returns `{ daytona, options, stop }`: `options` make more clients of the same backend;
 * `stop()` ends a started `forge local` (the last thing in the file's `test.after`).
 */
export async function sandboxBackend() {
  const { Daytona } = addon()
  if (!isWasi()) return { daytona: new Daytona({ backend: 'local' }), options: { backend: 'local' }, stop: async () => {} }
  const { startForgeLocal } = await import('../crates/testkit/js/forge-local.mjs')
  const forge = await startForgeLocal()
  const options = { apiUrl: forge.apiUrl, apiKey: forge.apiKey }
  return { daytona: new Daytona(options), options, stop: () => forge.stop() }
}

/** A test's `skip` when it needs the native build: the reason under WASI, else false. */
export const nativeOnly = (why) => (isWasi() ? `native build only: ${why}` : false)

/** An HTTP server on 127.0.0.1 answering every request with `handler(req, res)`. */
export async function scriptedServer(handler) {
  const requests = []
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, headers: req.headers })
    handler(req, res)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  return {
    url: `http://127.0.0.1:${port}/api`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

/** A port on which nothing listens. */
export async function deadPort() {
  const s = http.createServer()
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve))
  const { port } = s.address()
  await new Promise((resolve) => s.close(resolve))
  return port
}

/**
 * Waits until `check()` (sync or async) is true, polling every 50 ms. No bound of its own:
 * the test's timeout is the bound, so a busy machine makes a test slower, never wrong. Pass
 * the test's `t.signal`: a test that ended (timed out, failed) stops its waits with it.
 */
export async function until(check, signal) {
  while (!(await check())) {
    signal?.throwIfAborted()
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** This machine's processes whose command line contains `text` (the embedded backend's
 * sandbox processes are this machine's). */
export function processesMentioning(text) {
  return processes()
    .map(({ pid, argv }) => [pid, argv.join(' ')])
    .filter(([, cmd]) => cmd.includes(text))
    .map(([pid, cmd]) => `${pid}: ${cmd}`)
}

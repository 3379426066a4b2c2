// Shared helpers of the Node tests: the addon, a private FORGE_HOME, and scripted HTTP servers
// (real sockets on 127.0.0.1) for answers the embedded backend never gives (429, 5xx, garbage).
import { createRequire } from 'node:module'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import http from 'node:http'

const require = createRequire(import.meta.url)

/** Points the embedded backend at a fresh folder; call before the first local client. */
export function privateHome(tag = 'test') {
  const home = mkdtempSync(join(tmpdir(), `forge-${tag}-`))
  process.env.FORGE_HOME = home
  return home
}

export const addon = () => require('../index.js')

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
  const out = []
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')
      if (cmd.includes(text)) out.push(`${pid}: ${cmd}`)
    } catch {}
  }
  return out
}

// AbortSignal on every long call, and what aborting leaves behind: the call rejects with an
// `AbortError` (`code: 'DAYTONA_ABORTED'`), and the work inside the sandbox stops too (checked
// on this machine's process table: the embedded backend runs sandbox commands here).
import test from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { addon, privateHome, processesMentioning, until, tempDir } from './helpers.mjs'
import { createRepo, reachableFromSandboxes, startGitHttp } from '../crates/testkit/js/forge-local.mjs'

privateHome('abort')
const { Daytona } = addon()
const daytona = new Daytona({ backend: 'local' })
const TOKEN = 'ghp_Abort0Token0123456789'
const ABORTED = { name: 'AbortError', code: 'DAYTONA_ABORTED' }

let sandbox
let git
// A git server that accepts connections and never answers: a clone from it hangs until killed.
const held = []
const silent = createServer((c) => held.push(c))
test.before(async () => {
  await new Promise((r) => silent.listen(0, '127.0.0.1', r))
  // Before the backend starts (first call below): its sandboxes reach the allowed ports only.
  reachableFromSandboxes(silent.address().port)
  const repos = tempDir('abort-repos')
  createRepo(repos, 'app.git', 'main', {
    'package.json': JSON.stringify({ name: 'slow', private: true, scripts: { dev: 'node server.js' } }),
    // Never listens: verification can only end by its deadline or an abort.
    'server.js': 'setInterval(() => {}, 1000)\n',
  })
  // Before the first call: the embedded backend lets its sandboxes reach this port only.
  git = await startGitHttp(repos, null, TOKEN)
  sandbox = await daytona.create()
})
test.after(async () => {
  await sandbox?.delete()
  await git?.close()
  for (const c of held) c.destroy()
  silent.close()
})

/** Waits until no process mentions `marker`. */
async function gone(marker, signal) {
  await until(() => processesMentioning(marker).length === 0, signal)
  return processesMentioning(marker)
}

test('executeCommand: aborting kills the command inside the sandbox', { timeout: 30_000 }, async (t) => {
  const marker = `forge-exec-abort-${process.pid}`
  const ac = new AbortController()
  const p = sandbox.process.executeCommand(`sleep 60; echo ${marker}`, undefined, undefined, undefined, ac.signal)
  await until(() => processesMentioning(marker).length > 0, t.signal) // the command started
  ac.abort()
  await assert.rejects(p, ABORTED)
  assert.deepEqual(await gone(marker, t.signal), [])
  // The sandbox still works afterwards.
  assert.equal((await sandbox.process.executeCommand('echo ok')).result.trim(), 'ok')
})

test('an already-aborted signal rejects at once and runs nothing', async () => {
  const marker = `forge-pre-aborted-${process.pid}`
  await assert.rejects(sandbox.process.executeCommand(`echo ${marker} > /tmp/${marker}`, undefined, undefined, undefined, AbortSignal.abort()), ABORTED)
  const r = await sandbox.process.executeCommand(`test -e /tmp/${marker} && echo yes || echo no`)
  assert.equal(r.result.trim(), 'no')
})

test('git.clone: aborting kills the clone inside the sandbox (embedded backend)', { timeout: 30_000 }, async (t) => {
  const marker = `forge-clone-abort-${process.pid}`
  const ac = new AbortController()
  const url = `http://127.0.0.1:${silent.address().port}/${marker}.git`
  const p = sandbox.git.clone(url, 'hang', undefined, undefined, undefined, undefined, ac.signal)
  // The clone ends only by the abort: one that fails on its own fails the test here.
  let early
  p.catch((e) => { early = e })
  await until(() => early || processesMentioning(marker).length > 0, t.signal) // git clone started
  assert.equal(early, undefined)
  ac.abort()
  await assert.rejects(p, ABORTED)
  assert.deepEqual(await gone(marker, t.signal), [])
})

test('create: aborting leaves no sandbox behind', { timeout: 30_000 }, async (t) => {
  const before = (await daytona.listSandboxes()).length
  const ac = new AbortController()
  const p = daytona.create({ labels: { purpose: 'abort-test' } }, ac.signal)
  ac.abort()
  await p.then(
    async (s) => {
      // The create finished before the abort was seen: then it is the caller's sandbox.
      await s.delete()
    },
    (e) => assert.equal(e.code, 'DAYTONA_ABORTED'),
  )
  await until(async () => (await daytona.listSandboxes()).length === before, t.signal)
})

test('verifyPreview: aborting ends the wait', { timeout: 120_000 }, async (t) => {
  const created = await daytona.createSandbox()
  try {
    await daytona.cloneRepository({ sandboxId: created.sandboxId, repoUrl: git.url('app.git'), token: TOKEN })
    const marker = `forge-verify-abort-${process.pid}`
    const started = await daytona.startDevServer({ sandboxId: created.sandboxId, command: `node server.js ${marker}`, port: 3000 })
    // The server never listens: verification could only end at its deadline (10 minutes,
    // past this test's timeout) or by the abort. Abort once the dev server runs, that is
    // while verification polls it, however long getting there took.
    const ac = new AbortController()
    const verified = daytona.verifyPreview({ sandboxId: created.sandboxId, port: 3000, sessionId: started.sessionId, commandId: started.commandId, timeoutMs: 600_000 }, { signal: ac.signal })
    await until(() => processesMentioning(marker).length > 0, t.signal)
    ac.abort()
    await assert.rejects(verified, ABORTED)
  } finally {
    await (await daytona.getSandbox(created.sandboxId)).delete()
  }
})

test('cloneAndPreview: aborting while verifying deletes the sandbox and its dev server', { timeout: 60_000 }, async (t) => {
  const ac = new AbortController()
  let sandboxId
  const p = daytona.cloneAndPreview({
    repoUrl: git.url('app.git'),
    token: TOKEN,
    installCommand: 'true',
    signal: ac.signal,
    onProgress: (e) => {
      if (e.step === 'create' && e.status === 'finished') sandboxId = e.message.split(' ')[1]
      // Verification of a server that never listens runs until its deadline: abort as it
      // starts, whenever that is.
      if (e.step === 'verify' && e.status === 'started') ac.abort()
    },
  })
  await assert.rejects(p, ABORTED)
  await until(async () => (await daytona.checkHealth({ sandboxId })).state === null, t.signal)
  assert.deepEqual(await gone(sandboxId, t.signal), [])
})

test('session log stream: aborting the follow rejects, the command keeps its own life', { timeout: 30_000 }, async () => {
  await sandbox.process.createSession('abort-logs')
  const { cmdId } = await sandbox.process.executeSessionCommand('abort-logs', { command: 'for i in 1 2 3 4 5 6 7 8 9 10; do echo tick $i; sleep 1; done', runAsync: true })
  const ac = new AbortController()
  const seen = []
  const p = sandbox.process.getSessionCommandLogs('abort-logs', cmdId, (c) => {
    seen.push(c)
    ac.abort()
  }, undefined, ac.signal)
  await assert.rejects(p, ABORTED)
  assert.ok(seen.join('').includes('tick 1'))
  await sandbox.process.deleteSession('abort-logs')
})

test('calls with a signal need little of the JS stack (a fat-LTO build once put a 1 MB frame on it)', { timeout: 60_000 }, () => {
  // V8 bounds the JS thread's stack (~1 MB, less under a deep framework stack): every future
  // must be built on the runtime's threads, not in the napi call. A 200 KB stack is plenty.
  const script = `
    const { Daytona } = require(${JSON.stringify(join(import.meta.dirname, '..', 'index.js'))})
    const d = new Daytona({ backend: 'local' })
    const signal = new AbortController().signal
    const calls = [
      () => d.cloneAndPreview({ repoUrl: 'http://127.0.0.1:1/none.git', signal }),
      () => d.cloneRepository({ sandboxId: 'none', repoUrl: 'http://127.0.0.1:1/none.git' }, { signal }),
      () => d.verifyPreview({ sandboxId: 'none', port: 3000 }, { signal }),
      () => d.create({ labels: { purpose: 'stack' } }, signal).then((s) => s.delete()),
    ]
    ;(async () => {
      const codes = []
      for (const call of calls) codes.push(await call().then(() => 'ok', (e) => e.code ?? e.name + ': ' + e.message))
      console.log(JSON.stringify(codes))
      process.exit(0)
    })()`
  const home = tempDir('stack')
  const out = execFileSync(process.execPath, ['--stack-size=200', '-e', script], { env: { ...process.env, FORGE_HOME: home }, encoding: 'utf8' })
  const codes = JSON.parse(out.trim().split('\n').pop())
  assert.equal(codes.length, 4)
  for (const c of codes) assert.ok(c === 'ok' || c.startsWith('DAYTONA_') || c.startsWith('PREVIEW_'), c)
  assert.equal(codes[3], 'ok')
})

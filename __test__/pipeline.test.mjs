// The clone → preview pipeline end to end on the embedded backend: repositories served by a
// real git smart-HTTP server on 127.0.0.1 (token auth), real installs from the npm registry
// inside the sandbox, real dev servers, previews fetched through the backend's preview proxy.
// Run a second time on the WebAssembly build against a native `forge local` (sandboxBackend).
import test from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { privateHome, processesMentioning, sandboxBackend, until, tempDir } from './helpers.mjs'
import { createRepo, startGitHttp } from '../crates/testkit/js/forge-local.mjs'

privateHome('pipeline')
const TOKEN = 'ghp_Pipeline0Secret0Token0123456789'

const NODE_APP = {
  'package.json': JSON.stringify({ name: 'zero-dep', private: true, scripts: { dev: 'node server.js' } }),
  'server.js': `const http = require('http')
const port = Number(process.env.PORT || 3000)
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' })
  res.end('<!doctype html><title>zero</title><h1>hello from ' + (process.env.APP_NAME || 'zero-dep') + '</h1>')
}).listen(port, () => console.log('listening on http://localhost:' + port))
`,
}

const OTHER_PORT_APP = {
  'package.json': JSON.stringify({ name: 'fixed-port', private: true, scripts: { dev: 'node server.js' } }),
  // Ignores PORT: the log is the only place that says where it listens.
  'server.js': `require('http').createServer((q, s) => s.end('fixed port app')).listen(4567, () =>
  console.log('  Local:   http://localhost:4567/'))
`,
}

const EXITING_APP = {
  'package.json': JSON.stringify({ name: 'exits', private: true, scripts: { dev: 'node server.js' } }),
  'server.js': `console.error('fatal: missing DATABASE_URL'); process.exit(3)\n`,
}

const viteApp = (entry, main) => ({
  'package.json': JSON.stringify({
    name: 'vite-app',
    private: true,
    type: 'module',
    scripts: { dev: 'vite', build: 'vite build' },
    devDependencies: { vite: '5.4.11' },
  }),
  'index.html': `<!doctype html><html><head><title>vite app</title></head><body><div id="app"></div><script type="module" src="/src/${entry}"></script></body></html>\n`,
  [`src/${entry}`]: main,
})

const NEXT_APP = {
  'package.json': JSON.stringify({
    name: 'next-app',
    private: true,
    scripts: { dev: 'next dev', build: 'next build' },
    dependencies: { next: '15.5.6', react: '19.2.0', 'react-dom': '19.2.0' },
  }),
  'next.config.mjs': 'export default { eslint: { ignoreDuringBuilds: true } }\n',
  'app/layout.js': 'export default function RootLayout({ children }) { return <html><body>{children}</body></html> }\n',
  'app/page.js': 'export default function Page() { return <h1>hello from next</h1> }\n',
}

let git
let repoRoot
let daytona
let backend
test.before(async () => {
  repoRoot = tempDir('pipeline-repos')
  createRepo(repoRoot, 'node-app.git', 'main', NODE_APP)
  createRepo(repoRoot, 'other-port.git', 'main', OTHER_PORT_APP)
  createRepo(repoRoot, 'exits.git', 'main', EXITING_APP)
  createRepo(repoRoot, 'vite-app.git', 'main', viteApp('main.js', "document.querySelector('#app').textContent = 'vite works'\n"))
  createRepo(repoRoot, 'vite-broken.git', 'main', viteApp('main.ts', 'const x: number = ;\nexport default x\n'))
  createRepo(repoRoot, 'next-app.git', 'main', NEXT_APP)
  git = await startGitHttp(repoRoot, null, TOKEN)
  backend = await sandboxBackend()
  daytona = backend.daytona
})
test.after(async () => {
  await git?.close()
  await backend?.stop()
})

/** Fetches a preview the way a browser iframe of a private sandbox would (token in the query). */
async function fetchPreview(r, path = '/') {
  const u = new URL(path, r.previewUrl)
  const headers = r.token ? { 'x-daytona-preview-token': r.token } : {}
  return fetch(u, { headers, redirect: 'manual' })
}

/** No process of this sandbox is left (the backend runs them on this machine). */

test('zero-dependency Node app: verified preview, timings, progress, no token anywhere', { timeout: 120_000 }, async () => {
  const events = []
  const r = await daytona.cloneAndPreview({
    repoUrl: git.url('node-app.git'),
    token: TOKEN,
    envVars: { APP_NAME: 'pipeline-test' },
    onProgress: (e) => events.push(e),
  })
  try {
    assert.equal(r.framework, 'node')
    assert.equal(r.port, 3000)
    assert.equal(r.verify.ok, true)
    assert.equal(r.verify.reason, 'OK')
    assert.ok(r.token, 'a private sandbox has a preview token')
    const res = await fetchPreview(r)
    assert.equal(res.status, 200)
    assert.match(await res.text(), /hello from pipeline-test/)
    for (const k of ['create', 'clone', 'detect', 'install', 'start', 'verify', 'total']) {
      assert.equal(typeof r.timings[k], 'number', k)
    }
    assert.ok(r.timings.total >= r.timings.install)
    assert.deepEqual(r.steps.map((s) => s.step), ['create', 'clone', 'detect', 'install', 'start', 'verify'])
    // Progress: started + finished for every step, in order.
    const seq = events.map((e) => `${e.step}:${e.status}`)
    assert.deepEqual(seq, ['create', 'clone', 'detect', 'install', 'start', 'verify'].flatMap((s) => [`${s}:started`, `${s}:finished`]))
    assert.ok(events.every((e) => typeof e.elapsedMs === 'number'))
    // The result is plain JSON and carries no git token.
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r)
    assert.ok(!JSON.stringify(r).includes(TOKEN))
    const sandbox = await daytona.getSandbox(r.sandboxId)
    const config = (await sandbox.fs.readFile(`${r.path}/.git/config`)).toString()
    assert.ok(!config.includes(TOKEN), 'the token is not in .git/config')
    const health = await daytona.checkHealth({ sandboxId: r.sandboxId, port: r.port })
    assert.equal(health.isAlive, true)
    assert.equal(health.preview.ok, true)
    // verifyPreview on its own hands out the same token as cloneAndPreview did.
    assert.equal((await daytona.verifyPreview({ sandboxId: r.sandboxId, port: r.port })).token, r.token)
  } finally {
    await (await daytona.getSandbox(r.sandboxId)).delete()
  }
  const gone = await daytona.checkHealth({ sandboxId: r.sandboxId })
  assert.deepEqual({ isAlive: gone.isAlive, state: gone.state }, { isAlive: false, state: null })
})

test('a server on a port other than the framework default is found from its log', { timeout: 120_000 }, async () => {
  const r = await daytona.cloneAndPreview({ repoUrl: git.url('other-port.git'), token: TOKEN, public: true })
  try {
    // A public sandbox needs no token: neither the pipeline nor verifyPreview hands one out.
    assert.equal(r.token, null)
    assert.equal((await daytona.verifyPreview({ sandboxId: r.sandboxId, port: r.port })).token, null)
    assert.equal(r.port, 4567)
    assert.equal(r.token, null)
    const res = await fetch(r.previewUrl)
    assert.equal(await res.text(), 'fixed port app')
  } finally {
    await (await daytona.getSandbox(r.sandboxId)).delete()
  }
})

test('a dev script that exits at once fails at verify with its log, and the sandbox is deleted', { timeout: 120_000 }, async () => {
  const before = (await daytona.listSandboxes()).items?.length ?? (await daytona.listSandboxes()).length
  const err = await daytona.cloneAndPreview({ repoUrl: git.url('exits.git'), token: TOKEN }).then(
    () => assert.fail('should fail'),
    (e) => e,
  )
  assert.equal(err.name, 'DaytonaError')
  assert.equal(err.code, 'PREVIEW_VERIFY_FAILED')
  assert.equal(err.step, 'verify')
  assert.equal(err.reason, 'PROCESS_EXITED')
  assert.ok(err.logTail.some((l) => l.includes('missing DATABASE_URL')), JSON.stringify(err.logTail))
  assert.equal(err.kept, false)
  await assert.rejects(daytona.getSandbox(err.sandboxId), { code: 'DAYTONA_NOT_FOUND' })
  const after = (await daytona.listSandboxes()).items?.length ?? (await daytona.listSandboxes()).length
  assert.equal(after, before)
})

test('keepOnFailure keeps the sandbox of a failed install, with the install log', { timeout: 120_000 }, async () => {
  const err = await daytona
    .cloneAndPreview({
      repoUrl: git.url('node-app.git'),
      token: TOKEN,
      installCommand: 'echo "resolving deps"; echo "npm ERR! 404 not found: left-pad-forge" >&2; exit 7',
      keepOnFailure: true,
    })
    .then(() => assert.fail('should fail'), (e) => e)
  assert.equal(err.code, 'PREVIEW_INSTALL_FAILED')
  assert.equal(err.step, 'install')
  assert.equal(err.exitCode, 7)
  assert.ok(err.logTail.some((l) => l.includes('left-pad-forge')), JSON.stringify(err.logTail))
  assert.equal(err.kept, true)
  const kept = await daytona.getSandbox(err.sandboxId)
  assert.equal(kept.state, 'started')
  await kept.delete()
})

test('a wrong git token fails at clone with a typed error that does not echo it', { timeout: 60_000 }, async () => {
  const wrong = 'ghp_Wrong0Token0Value0000000000'
  const err = await daytona.cloneAndPreview({ repoUrl: git.url('node-app.git'), token: wrong }).then(
    () => assert.fail('should fail'),
    (e) => e,
  )
  assert.equal(err.step, 'clone')
  // The git server refused the token: not DAYTONA_AUTH, which is Daytona refusing its key.
  assert.equal(err.code, 'GIT_AUTH_FAILED')
  assert.ok(!err.message.includes(wrong) && !err.stack.includes(wrong))
  await assert.rejects(daytona.getSandbox(err.sandboxId), { code: 'DAYTONA_NOT_FOUND' })
})

test('aborting during install kills the install inside the sandbox and deletes it', { timeout: 60_000 }, async (t) => {
  const marker = `forge-abort-${process.pid}-${Date.now()}`
  const ac = new AbortController()
  let sandboxId
  const p = daytona.cloneAndPreview({
    repoUrl: git.url('node-app.git'),
    token: TOKEN,
    installCommand: `sleep 120 # ${marker}`,
    signal: ac.signal,
    onProgress: (e) => {
      if (e.step === 'create' && e.status === 'finished') sandboxId = e.message.split(' ')[1]
      // Abort once the install runs (it sleeps for two minutes), however long that takes.
      if (e.step === 'install' && e.status === 'started') until(() => processesMentioning(marker).length > 0, t.signal).then(() => ac.abort(), () => {})
    },
  })
  await assert.rejects(p, { name: 'AbortError', code: 'DAYTONA_ABORTED' })
  assert.ok(sandboxId)
  // The install is killed and the sandbox deleted (before the promise settles, or within the
  // abort grace): wait for both states.
  await until(() => processesMentioning(marker).length === 0, t.signal)
  await until(async () => (await daytona.checkHealth({ sandboxId })).state === null, t.signal)
})

test('a throwing onProgress callback rejects with DAYTONA_CALLBACK_ERROR and cleans up', { timeout: 60_000 }, async () => {
  let sandboxId
  const err = await daytona
    .cloneAndPreview({
      repoUrl: git.url('node-app.git'),
      token: TOKEN,
      onProgress: (e) => {
        if (e.step === 'create' && e.status === 'finished') sandboxId = e.message.split(' ')[1]
        if (e.step === 'detect') throw new Error('boom in progress')
      },
    })
    .then(() => assert.fail('should fail'), (e) => e)
  assert.equal(err.code, 'DAYTONA_CALLBACK_ERROR')
  assert.match(err.message, /boom in progress/)
  assert.equal((await daytona.checkHealth({ sandboxId })).isAlive, false)
})

test('bad input is a typed error', async () => {
  assert.throws(() => daytona.cloneAndPreview({ repoUrl: '' }), { code: 'DAYTONA_INVALID_ARGUMENT' })
  assert.throws(() => daytona.cloneAndPreview({ repoUrl: 'x', port: 'eighty' }), (e) => e.code === 'DAYTONA_INVALID_ARGUMENT' && !e.message.includes('eighty'))
  assert.throws(() => daytona.cloneAndPreview({ repoUrl: 'x', onProgress: 5 }), { code: 'DAYTONA_INVALID_ARGUMENT' })
  assert.throws(() => daytona.verifyPreview({ port: 3000 }), { code: 'DAYTONA_INVALID_ARGUMENT' })
  await assert.rejects(daytona.verifyPreview({ sandboxId: 'no-such-sandbox', port: 3000 }), { code: 'DAYTONA_NOT_FOUND', step: 'verify' })
})

test('two sandboxes whose dev servers want the same port both get a working preview', { timeout: 180_000 }, async () => {
  const [a, b] = await Promise.all(
    ['alpha', 'beta'].map((name) =>
      daytona.cloneAndPreview({ repoUrl: git.url('node-app.git'), token: TOKEN, public: true, envVars: { APP_NAME: name } }),
    ),
  )
  try {
    assert.equal(a.port, 3000)
    assert.equal(b.port, 3000)
    assert.notEqual(a.previewUrl, b.previewUrl)
    assert.match(await (await fetch(a.previewUrl)).text(), /hello from alpha/)
    assert.match(await (await fetch(b.previewUrl)).text(), /hello from beta/)
  } finally {
    await Promise.all([a, b].map(async (r) => (await daytona.getSandbox(r.sandboxId)).delete()))
  }
})

test('the steps one by one, every output JSON round-tripped (as Inngest stores them), then health and restart', { timeout: 120_000 }, async () => {
  const rt = (v) => JSON.parse(JSON.stringify(v))
  const created = rt(await daytona.createSandbox({ workspaceClass: 'small' }))
  try {
    assert.equal(created.state, 'started')
    assert.equal(created.memoryGib, 8)
    const cloned = rt(await daytona.cloneRepository({ sandboxId: created.sandboxId, repoUrl: git.url('node-app.git'), token: TOKEN }))
    assert.equal(cloned.path, 'workspace/project')
    const detected = rt(await daytona.detectFramework({ sandboxId: created.sandboxId, path: cloned.path }))
    assert.equal(detected.framework.id, 'node')
    const installed = rt(
      await daytona.installDependencies({
        sandboxId: created.sandboxId,
        path: cloned.path,
        installRoot: detected.installRoot,
        command: detected.installCommand,
        memoryGib: created.memoryGib,
      }),
    )
    assert.equal(installed.exitCode, 0)
    const started = rt(
      await daytona.startDevServer({
        sandboxId: created.sandboxId,
        path: cloned.path,
        root: detected.root,
        command: detected.devCommand,
        port: detected.port,
        envVars: detected.env,
        framework: detected.framework.id,
      }),
    )
    assert.equal(started.port, 3000)
    const verified = rt(
      await daytona.verifyPreview({
        sandboxId: created.sandboxId,
        port: started.port,
        sessionId: started.sessionId,
        commandId: started.commandId,
      }),
    )
    assert.equal(verified.ok, true)
    assert.equal((await fetchPreview(verified)).status, 200)
    // The guide's Example 3: health, then a restart after the sandbox was stopped.
    assert.equal((await daytona.checkHealth({ sandboxId: created.sandboxId, port: 3000 })).isAlive, true)
    await (await daytona.getSandbox(created.sandboxId)).stop()
    const stopped = await daytona.checkHealth({ sandboxId: created.sandboxId, port: 3000 })
    assert.deepEqual({ isAlive: stopped.isAlive, state: stopped.state }, { isAlive: false, state: 'stopped' })
    const restarted = rt(await daytona.restartPreview({ sandboxId: created.sandboxId, path: cloned.path, sessionId: started.sessionId }))
    assert.equal(restarted.sandboxStarted, true)
    assert.equal(restarted.verified.ok, true)
    assert.equal((await fetchPreview(restarted.verified)).status, 200)
  } finally {
    await (await daytona.getSandbox(created.sandboxId)).delete()
  }
})

test('a real Vite app: npm install inside the sandbox, preview serves the index and the entry module', { timeout: 300_000 }, async () => {
  const r = await daytona.cloneAndPreview({ repoUrl: git.url('vite-app.git'), token: TOKEN, public: true })
  try {
    assert.equal(r.framework, 'vite')
    assert.equal(r.port, 5173)
    const index = await (await fetch(r.previewUrl)).text()
    assert.match(index, /<title>vite app<\/title>/)
    assert.match(index, /@vite\/client/)
    const entry = await fetch(new URL('/src/main.js', r.previewUrl))
    assert.equal(entry.status, 200)
    assert.match(await entry.text(), /vite works/)
    // The detected `npx vite …` runs as Vite itself, from the app's node_modules/.bin, without npx's own start.
    const ps = await (await daytona.getSandbox(r.sandboxId)).process.executeCommand('ps -eo args')
    const procs = ps.result.split('\n')
    assert.ok(procs.some((p) => /^node node_modules\/\.bin\/vite --host 0\.0\.0\.0 --port 5173\b/.test(p)), ps.result)
    assert.ok(!procs.some((p) => /^(npx|npm)\b/.test(p)), ps.result)
  } finally {
    await (await daytona.getSandbox(r.sandboxId)).delete()
  }
})

// A syntax error in TypeScript fails Vite's transform (500 on the module); note that Vite 5
// serves a plain .js file with a syntax error unchanged (200), so only a browser would see it.
test('a Vite app with a syntax error fails at verify with the error excerpt', { timeout: 300_000 }, async () => {
  const err = await daytona.cloneAndPreview({ repoUrl: git.url('vite-broken.git'), token: TOKEN }).then(
    () => assert.fail('should fail'),
    (e) => e,
  )
  assert.equal(err.code, 'PREVIEW_VERIFY_FAILED')
  assert.equal(err.reason, 'FRAMEWORK_ERROR')
  assert.match(err.excerpt, /Transform failed|Unexpected/, err.excerpt)
  assert.equal(err.kept, false)
})

test('a Next.js app: install from the registry, first compile, verified', { timeout: 600_000 }, async () => {
  const r = await daytona.cloneAndPreview({ repoUrl: git.url('next-app.git'), token: TOKEN, public: true })
  try {
    assert.equal(r.framework, 'nextjs')
    const html = await (await fetch(r.previewUrl)).text()
    assert.match(html, /hello from next/)
  } finally {
    await (await daytona.getSandbox(r.sandboxId)).delete()
  }
})

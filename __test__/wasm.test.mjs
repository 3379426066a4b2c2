// The WebAssembly build (docs/wasm.md) through the package entry under NAPI_RS_FORCE_WASI=1,
// against a native `forge local` (the CLI binary) over real HTTP: every request goes through
// JavaScript's fetch (wasm-fetch.js). Skipped, saying so, when the build is absent (it is made
// by `npm run build:wasm`, which `npm test` does not run), except where the run requires it
// (CI: FORGE_REQUIRE_WASM=1 or CI), where its absence fails.
import test from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { createRepo, startForgeLocal, startGitHttp } from '../crates/testkit/js/forge-local.mjs'
import { wasmBuild, tempDir } from './helpers.mjs'

const build = wasmBuild()
const absent = `the WebAssembly build is absent (${build.path}): run \`npm run build:wasm\` first`
const skip = build.present || build.required ? false : absent

const TOKEN = 'ghp_Wasm0Pipeline0Secret0Token012345678'
let addon, forge, git, repos
test.before(async () => {
  if (skip) return
  if (!build.present) throw new Error(`${absent} (this run requires it: FORGE_REQUIRE_WASM=1 or CI is set)`)
  // The WASI build only, as a user asking for it gets (index.js reads '1' as 'error').
  process.env.NAPI_RS_FORCE_WASI = '1'
  addon = createRequire(import.meta.url)('../index.js')
  repos = tempDir('wasm-repos')
  createRepo(repos, 'node-app.git', 'main', {
    'package.json': JSON.stringify({ name: 'zero-dep', private: true, scripts: { dev: 'node server.js' } }),
    'server.js': `const port = Number(process.env.PORT || 3000)
require('http').createServer((q, s) => { s.writeHead(200, { 'content-type': 'text/html' }); s.end('<!doctype html><title>w</title><h1>hello from ' + process.env.APP_NAME + '</h1>') })
  .listen(port, () => console.log('listening on http://localhost:' + port))
`,
  })
  // Before the backend starts: it lets its sandboxes reach this server's port.
  git = await startGitHttp(repos, null, TOKEN)
  forge = await startForgeLocal()
})
test.after(async () => {
  await forge?.stop()
  await git?.close()
  if (repos) rmSync(repos, { recursive: true, force: true })
})

const client = () => new addon.Daytona({ apiUrl: forge.apiUrl, apiKey: forge.apiKey })

test('the WebAssembly build is the one loaded', { skip }, () => {
  assert.equal(typeof addon.__installFetch, 'function', 'only the WebAssembly build has the fetch transport')
  assert.equal(typeof addon.Daytona, 'function')
})

test('create a sandbox, exec in it, upload and read a file, delete it', { skip }, async () => {
  const daytona = client()
  const sandbox = await daytona.create({ envVars: { FROM: 'wasm' } })
  try {
    assert.equal(sandbox.state, 'started')
    const r = await sandbox.process.executeCommand('echo $FROM && uname -s', undefined, undefined, 30)
    assert.equal(r.exitCode, 0)
    assert.equal(r.result, 'wasm\nLinux\n')
    // A multipart upload (written out by src/wasm_fetch.rs) and a binary download.
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13])
    await sandbox.fs.uploadFile(bytes, 'workspace/bytes.bin')
    assert.deepEqual(await sandbox.fs.downloadFile('workspace/bytes.bin'), bytes)
    assert.equal((await daytona.getSandbox(sandbox.id)).id, sandbox.id)
  } finally {
    await sandbox.delete()
  }
  await assert.rejects(daytona.getSandbox(sandbox.id), { code: 'DAYTONA_NOT_FOUND', status: 404 })
})

test('live session logs (polled: WASI has no WebSocket): every line, in order, seen while the command runs', { skip, timeout: 120_000 }, async () => {
  const sandbox = await client().create()
  try {
    const p = sandbox.process
    await p.createSession('wasm-logs')
    // Waits for a file the test writes only after it has seen the first line: the callback
    // has to get output while the command is still running.
    const command = 'for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; done; ' +
      'while [ ! -f /tmp/go ]; do sleep 0.05; done; echo "out é 4"; echo "err 4" >&2'
    const { cmdId } = await p.executeSessionCommand('wasm-logs', { command, runAsync: true })
    let out = ''
    let err = ''
    let released = null
    const done = p.getSessionCommandLogs('wasm-logs', cmdId, (chunk) => {
      out += chunk
      if (!released && out.includes('out 1\n')) released = p.executeCommand('touch /tmp/go')
    }, (chunk) => { err += chunk })
    const logs = await done
    await released
    assert.equal(out, 'out 1\nout 2\nout 3\nout é 4\n')
    assert.equal(err, 'err 1\nerr 2\nerr 3\nerr 4\n')
    assert.deepEqual([logs.stdout, logs.stderr], ['', ''], 'the text went to the callbacks')
    await assert.rejects(p.getSessionCommandLogs('wasm-logs', 'no-such-command', () => {}), { code: 'DAYTONA_NOT_FOUND' })
  } finally {
    await sandbox.delete()
  }
})

test('the clone → preview pipeline: cloned over git HTTP, installed, started, verified (browser check skipped)', { skip, timeout: 120_000 }, async () => {
  const steps = []
  const r = await client().cloneAndPreview({
    repoUrl: git.url('node-app.git'),
    token: TOKEN,
    envVars: { APP_NAME: 'the wasm build' },
    onProgress: (e) => steps.push(`${e.step}:${e.status}`),
  })
  try {
    assert.equal(r.framework, 'node')
    assert.equal(r.verify.ok, true)
    assert.equal(r.verify.reason, 'OK')
    assert.deepEqual(steps, ['create', 'clone', 'detect', 'install', 'start', 'verify'].flatMap((s) => [`${s}:started`, `${s}:finished`]))
    assert.ok(!JSON.stringify(r).includes(TOKEN))
    const res = await fetch(new URL('/', r.previewUrl), { headers: r.token ? { 'x-daytona-preview-token': r.token } : {} })
    assert.equal(res.status, 200)
    assert.match(await res.text(), /hello from the wasm build/)
    const checked = await client().verifyPreview({ sandboxId: r.sandboxId, port: r.port, browser: true })
    assert.equal(checked.ok, true)
    assert.match(checked.browser.skipped, /no browser in the WebAssembly build/)
  } finally {
    await (await client().getSandbox(r.sandboxId)).delete()
  }
})

test('typed errors: unknown id, wrong key, nothing listening', { skip }, async () => {
  await assert.rejects(client().getSandbox('no-such-sandbox'), { name: 'DaytonaError', code: 'DAYTONA_NOT_FOUND', status: 404 })
  await assert.rejects(new addon.Daytona({ apiUrl: forge.apiUrl, apiKey: 'wrong' }).getSandbox('x'), { code: 'DAYTONA_AUTH', status: 401 })
  await assert.rejects(new addon.Daytona({ apiUrl: 'http://127.0.0.1:9/api', apiKey: 'k' }).getSandbox('x'), { code: 'DAYTONA_CONNECTION' })
})

test("backend: 'local' is a typed error saying how to run forge local", { skip }, () => {
  assert.throws(() => new addon.Daytona({ backend: 'local' }), (e) => {
    assert.equal(e.code, 'DAYTONA_LOCAL_UNSUPPORTED')
    assert.match(e.message, /WebAssembly build/)
    assert.match(e.message, /forge local/)
    return true
  })
})

test('detection of a folder through WASI and of an in-memory file map', { skip }, async () => {
  const dir = tempDir('wasm-detect')
  try {
    const pkg = { name: 'app', scripts: { dev: 'vite' }, dependencies: { react: '18.3.1', 'react-dom': '18.3.1' }, devDependencies: { vite: '5.4.0', '@vitejs/plugin-react': '4.3.1' } }
    const files = { 'package.json': JSON.stringify(pkg), 'index.html': '<div id="root"></div><script type="module" src="/src/main.jsx"></script>', 'vite.config.js': 'export default {}' }
    mkdirSync(join(dir, 'src'))
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
    // The folder is read through WASI's filesystem (the loader preopens the host root).
    const fromFolder = await addon.detectFramework(dir)
    assert.equal(fromFolder.framework.id, 'vite-react')
    assert.deepEqual(fromFolder, addon.detectFrameworkSync(files))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

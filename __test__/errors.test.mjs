// Errors as a type: every way a call of this package fails — bad arguments, an unknown sandbox,
// an abort, a throwing callback, a failed pipeline step, detection, a wrong git token against a
// real `git http-backend`, a wrong Daytona key — gives an instance of the exported
// `DaytonaError` (an `Error` subclass), recognised by `isDaytonaError`, with a code of the
// generated union; bad options name the option and what was expected, and a misspelt key is
// refused with the closest real one.
import test from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { addon, privateHome, sandboxBackend } from './helpers.mjs'
import { gitServer } from './githttp.mjs'

privateHome('errors')
const { Daytona, DaytonaError, isDaytonaError, detectFramework, detectFrameworkSync } = addon()
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const TOKEN = 'ghp_Errors0Secret0Token0123456789'

/** Every code the typings declare (the generated `DaytonaErrorCode` union). */
const CODES = new Set(
  [...readFileSync(join(root, 'index.d.ts'), 'utf8').matchAll(/^ {2}\| '([A-Z_]+)'$/gm)].map((m) => m[1]),
)

/** What `f` fails with, whether it throws at once or its promise rejects. */
async function failure(f) {
  try {
    await f()
  } catch (e) {
    return e
  }
  assert.fail('should fail')
}

/** The error is one of ours, by every test a caller may use. */
function ours(e, code) {
  assert.ok(e instanceof DaytonaError, `${e?.name}: ${e?.message} is a DaytonaError`)
  assert.ok(e instanceof Error)
  assert.ok(isDaytonaError(e))
  assert.equal(e.code, code, e.message)
  assert.ok(CODES.has(e.code), `${e.code} is in the typings' union`)
  assert.equal(typeof e.retryable, 'boolean')
  assert.ok('status' in e)
  assert.ok(!String(e.message).includes(TOKEN) && !String(e.stack).includes(TOKEN))
  return e
}

let server
let sandbox
let daytona
let backend
test.before(async () => {
  // The git server first: the embedded backend lets its sandboxes reach the ports of this
  // machine that listen before it starts (FORGE_SANDBOX_HOST_PORTS), and no other.
  server = await gitServer({ username: null, password: TOKEN })
  backend = await sandboxBackend()
  daytona = backend.daytona
  sandbox = await daytona.create()
})
test.after(async () => {
  await sandbox?.delete()
  await server?.close()
  await backend?.stop()
})

test('the class is a real Error subclass, exported alike by require and import', async () => {
  assert.equal(typeof DaytonaError, 'function')
  assert.ok(Object.prototype.isPrototypeOf.call(Error.prototype, DaytonaError.prototype))
  const made = new DaytonaError('made by hand', { code: 'DAYTONA_INTERNAL', retryable: false, status: null })
  assert.ok(made instanceof Error && isDaytonaError(made))
  assert.equal(made.name, 'DaytonaError')
  assert.equal(made.code, 'DAYTONA_INTERNAL')
  assert.equal(isDaytonaError(new Error('plain')), false)
  assert.equal(isDaytonaError({ code: 'DAYTONA_NOT_FOUND', message: 'lookalike' }), false)
  assert.equal(isDaytonaError(null), false)
  const esm = await import('../index.mjs')
  assert.equal(esm.DaytonaError, DaytonaError)
  assert.equal(esm.isDaytonaError, isDaytonaError)
  assert.ok(CODES.size >= 30 && CODES.has('GIT_AUTH_FAILED') && CODES.has('DAYTONA_INVALID_ARGUMENT'))
})

test('in a worker thread too: each JS environment has its own class', async () => {
  const { Worker } = await import('node:worker_threads')
  const w = new Worker(
    `const { Daytona, DaytonaError, isDaytonaError } = require(${JSON.stringify(join(root, 'index.js'))})
const { parentPort } = require('node:worker_threads')
try { new Daytona({ backend: 'moon' }) } catch (e) {
  parentPort.postMessage({ ours: e instanceof DaytonaError && isDaytonaError(e) && e instanceof Error, code: e.code })
}`,
    { eval: true },
  )
  const r = await new Promise((resolve, reject) => {
    w.once('message', resolve)
    w.once('error', reject)
  })
  await w.terminate()
  assert.deepEqual(r, { ours: true, code: 'DAYTONA_INVALID_ARGUMENT' })
  // The main thread's class is untouched by the worker's.
  ours(await failure(() => new Daytona({ backend: 'moon' })), 'DAYTONA_INVALID_ARGUMENT')
})

test('invalid arguments name the option and what was expected; misspelt keys say the right one', async () => {
  const invalid = async (f, message) => {
    const e = ours(await failure(f), 'DAYTONA_INVALID_ARGUMENT')
    assert.match(e.message, message)
    return e
  }
  await invalid(() => daytona.create({ imagee: 'node:22' }), /unknown option `imagee` in create options: did you mean `image`\?/)
  await invalid(() => daytona.create({ cpu: -1 }), /^cpu must be a positive integer$/)
  await invalid(() => daytona.create({ memory: 1.5 }), /^memory must be a positive integer$/)
  await invalid(() => daytona.create({ volumes: [{ volumeId: 'v' }] }), /^volumes\[0\]\.mountPath is required$/)
  await invalid(() => daytona.create({ workspaceClass: 'huge' }), /workspaceClass must be small, medium or large/)
  await invalid(() => daytona.createSandbox({ public: 'yes' }), /^public must be true or false$/)
  await invalid(() => daytona.cloneAndPreview({}), /^repoUrl is required$/)
  await invalid(() => daytona.cloneAndPreview({ repoUrl: 'https://x/r.git', imagee: 'node' }), /did you mean `image`/)
  await invalid(() => daytona.cloneAndPreview({ repoUrl: 'https://x/r.git', instalCommand: 'npm ci' }), /did you mean `installCommand`/)
  await invalid(() => daytona.cloneAndPreview('https://x/r.git'), /cloneAndPreview options must be an object/)
  await invalid(() => daytona.cloneRepository({ sandboxId: 'x' }), /^repoUrl is required$/)
  await invalid(() => daytona.cloneRepository({ sandboxId: 'x', repoUrl: 'u', token: 42 }), /^token must be a string$/)
  await invalid(() => daytona.verifyPreview({ sandboxId: 'x', port: 70000 }), /^port must be an integer from 0 to 65535$/)
  await invalid(() => daytona.installDependencies(null), /installDependencies input must be an object/)
  await invalid(() => new Daytona({ backend: 'moon' }), /^backend must be 'local' or 'remote'$/)
  await invalid(() => new Daytona({ apiKye: 'k' }), /did you mean `apiKey`/)
  await invalid(() => detectFrameworkSync({}, { prot: 3000 }), /unknown option `prot` in detectFramework options: did you mean `port`\?/)
  await invalid(() => detectFramework('.', { allowedHost: ['.x.dev'] }), /did you mean `allowedHosts`/)
  await invalid(() => sandbox.process.exec('pwd', { cwdd: '/tmp' }), /unknown option `cwdd` in exec options: did you mean `cwd`\?/)
  await invalid(() => sandbox.process.codeRun('1', { args: ['x'] }), /did you mean `argv`/)
  await invalid(() => sandbox.updateNetworkSettings({ networkBlockAl: true }), /did you mean `networkBlockAll`/)
  await invalid(() => sandbox.fs.setFilePermissions('x', { mod: '644' }), /did you mean `mode`/)
  // Arguments napi-rs converts itself (positional ones, the remaining napi option objects).
  await invalid(() => daytona.getSandbox(5), /^an argument of Daytona\.getSandbox must be a string, got number$/)
  await invalid(() => sandbox.getPreviewUrl(TOKEN), /^an argument of Sandbox\.getPreviewUrl must be a number, got string$/)
  await invalid(() => daytona.listSandboxes({ limit: 'many' }), /^limit must be a non-negative integer$/)
  // A misspelt filter must not list (and hand to a cleanup) every sandbox.
  await invalid(() => daytona.listSandboxes({ label: { run: 'r1' } }), /did you mean `labels`/)
  await invalid(() => sandbox.fs.createFolder(7, '755'), /^an argument of SandboxFs\.createFolder must be a string, got number$/)
  // A value given in the wrong place (a token as a number field) is never echoed.
  const e = await invalid(() => daytona.create({ cpu: TOKEN }), /^cpu must be a positive integer$/)
  assert.ok(!e.message.includes(TOKEN))
  // Options that are right still work (null where an output gives null, too).
  const s = await daytona.createSandbox({ cpu: 1, name: null, labels: null })
  await (await daytona.getSandbox(s.sandboxId)).delete()
})

test('an unknown sandbox, a missing file and a wrong Daytona key', async () => {
  ours(await failure(() => daytona.getSandbox('no-such-sandbox')), 'DAYTONA_NOT_FOUND')
  ours(await failure(() => sandbox.fs.downloadFile('no/such/file.txt')), 'DAYTONA_NOT_FOUND')
  const wrong = new Daytona({ apiKey: 'not-the-key', apiUrl: await daytona.apiUrl() })
  ours(await failure(() => wrong.getSandbox(sandbox.id)), 'DAYTONA_AUTH')
})

test('an abort is a DaytonaError named AbortError', async () => {
  const ac = new AbortController()
  ac.abort()
  const e = ours(await failure(() => daytona.create({}, ac.signal)), 'DAYTONA_ABORTED')
  assert.equal(e.name, 'AbortError')
  ours(await failure(() => daytona.createSandbox({}, { signal: ac.signal })), 'DAYTONA_ABORTED')
})

test('detection errors', async () => {
  ours(await failure(() => detectFramework('/no/such/folder/anywhere')), 'DETECT_NOT_FOUND')
  ours(await failure(() => detectFrameworkSync({ 'package.json': '{}' }, { root: 'apps/none' })), 'DETECT_ROOT_NOT_FOUND')
})

test('git: a wrong GitHub token is GIT_AUTH_FAILED and a missing repository GIT_NOT_FOUND, not the Daytona codes', { timeout: 120_000 }, async () => {
  const wrong = `${TOKEN}x`
  const e = ours(await failure(() => sandbox.git.clone(server.repoUrl, 'workspace/denied', undefined, undefined, 'git', wrong)), 'GIT_AUTH_FAILED')
  assert.equal(e.retryable, false)
  assert.ok(!e.message.includes(wrong))
  ours(await failure(() => daytona.cloneRepository({ sandboxId: sandbox.id, repoUrl: server.repoUrl, token: wrong, path: 'workspace/denied2' })), 'GIT_AUTH_FAILED')
  ours(await failure(() => sandbox.git.clone(`${server.url}/missing.git`, 'workspace/missing', undefined, undefined, 'git', TOKEN)), 'GIT_NOT_FOUND')
  // The right token still clones.
  await sandbox.git.clone(server.repoUrl, 'workspace/ok', undefined, undefined, 'git', TOKEN)
})

test('pipeline failures: a failed step and a throwing callback', { timeout: 180_000 }, async () => {
  const install = ours(
    await failure(() => daytona.cloneAndPreview({ repoUrl: server.repoUrl, token: TOKEN, installCommand: 'echo broken >&2; exit 7' })),
    'PREVIEW_INSTALL_FAILED',
  )
  assert.equal(install.step, 'install')
  assert.equal(install.exitCode, 7)
  const clone = ours(await failure(() => daytona.cloneAndPreview({ repoUrl: server.repoUrl, token: `${TOKEN}x` })), 'GIT_AUTH_FAILED')
  assert.equal(clone.step, 'clone')
  const cb = ours(
    await failure(() =>
      daytona.cloneAndPreview({
        repoUrl: server.repoUrl,
        token: TOKEN,
        onProgress: (p) => {
          if (p.step === 'clone') throw new Error('boom in a callback')
        },
      }),
    ),
    'DAYTONA_CALLBACK_ERROR',
  )
  assert.match(cb.message, /boom in a callback/)
})

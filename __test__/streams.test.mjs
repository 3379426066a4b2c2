// Streams for the browser: the install's and the dev server's output as lines (`onLog`, and
// `cloneAndPreviewEvents` as an async iterator), in order with the progress events, on the
// embedded backend with repositories served by a real git smart-HTTP server on 127.0.0.1.
import test from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isWasi, privateHome, sandboxBackend, tempDir } from './helpers.mjs'
import { createRepo, startGitHttp } from '../crates/testkit/js/forge-local.mjs'

privateHome('streams')
const TOKEN = 'ghp_Streams0Secret0Token01234567890'

const APP = {
  'package.json': JSON.stringify({ name: 'streamed', private: true, scripts: { dev: 'node server.js' } }),
  // The "install": known lines on both streams, one coloured, the last without a newline.
  'install.js': `for (let i = 1; i <= 5; i++) console.log('install line ' + i)
console.error('install warning')
process.stdout.write('\\x1b[32minstall done\\x1b[0m')
`,
  'server.js': `console.log('dev: booting')
const port = Number(process.env.PORT || 3000)
require('http').createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' })
  res.end('<!doctype html><title>streamed</title><h1>streamed app</h1>')
}).listen(port, () => console.log('dev: listening on ' + port))
`,
}
const INSTALL_LINES = ['install line 1', 'install line 2', 'install line 3', 'install line 4', 'install line 5', 'install done']

let git
let repos
let daytona
let backend
test.before(async () => {
  repos = tempDir('streams-repos')
  createRepo(repos, 'streamed.git', 'main', APP)
  git = await startGitHttp(repos, null, TOKEN)
  backend = await sandboxBackend()
  daytona = backend.daytona
})
test.after(async () => {
  await git?.close()
  await backend?.stop()
  rmSync(repos, { recursive: true, force: true })
})

const options = (extra = {}) => ({ repoUrl: git.url('streamed.git'), token: TOKEN, installCommand: 'node install.js', ...extra })
const count = async () => {
  const l = await daytona.listSandboxes()
  return (l.items ?? l).length
}
const lines = (events, step, stream = 'stdout') =>
  events.filter((e) => e.type === 'log' && e.log.step === step && e.log.stream === stream).map((e) => e.log.line)
const at = (events, step, status) => events.findIndex((e) => e.type === 'progress' && e.progress.step === step && e.progress.status === status)

/** The events' order: every install line between "install started" and "install finished",
 * the dev server's lines (once each) after the start and before verification finished. */
function assertOrdered(events) {
  assert.deepEqual(lines(events, 'install'), INSTALL_LINES)
  assert.deepEqual(lines(events, 'install', 'stderr'), ['install warning'])
  // `npm run dev`'s own header, then the server's lines, each once.
  const dev = lines(events, 'start')
  assert.ok(dev.includes('> node server.js'), JSON.stringify(dev))
  assert.deepEqual(
    dev.filter((l) => l.startsWith('dev: ')),
    ['dev: booting', 'dev: listening on 3000'],
  )
  const idx = (pred) => events.map((e, i) => (pred(e) ? i : -1)).filter((i) => i >= 0)
  const install = idx((e) => e.type === 'log' && e.log.step === 'install')
  const server = idx((e) => e.type === 'log' && e.log.step === 'start')
  assert.ok(at(events, 'install', 'started') < install[0])
  assert.ok(install.at(-1) < at(events, 'install', 'finished'))
  assert.ok(at(events, 'start', 'finished') < server[0])
  assert.ok(server.at(-1) < at(events, 'verify', 'finished'))
}

test('onLog gets the install and the dev server line by line, in order with onProgress', { timeout: 120_000 }, async () => {
  const events = []
  const r = await daytona.cloneAndPreview(
    options({
      onProgress: (progress) => events.push({ type: 'progress', progress }),
      // A slow consumer (a promise per line): it is waited for, nothing is lost.
      onLog: (log) => new Promise((resolve) => setTimeout(() => resolve(events.push({ type: 'log', log })), 5)),
    }),
  )
  try {
    assert.equal(r.verify.ok, true)
    assertOrdered(events)
    assert.ok(!JSON.stringify(events).includes(TOKEN))
  } finally {
    await (await daytona.getSandbox(r.sandboxId)).delete()
  }
})

test('a throwing onLog rejects with DAYTONA_CALLBACK_ERROR and leaves no sandbox', { timeout: 120_000 }, async () => {
  const before = await count()
  const err = await daytona
    .cloneAndPreview(
      options({
        // The install waits after its first lines: the error must stop it, not its end.
        installCommand: 'node install.js && sleep 60',
        onLog: (l) => {
          throw new Error(`no thanks: ${l.line}`)
        },
      }),
    )
    .then(
      () => assert.fail('should reject'),
      (e) => e,
    )
  assert.equal(err.code, 'DAYTONA_CALLBACK_ERROR')
  assert.equal(err.step, 'install')
  assert.match(err.message, /onLog callback threw: no thanks: install line 1/)
  assert.equal(await count(), before)
  assert.throws(() => daytona.cloneAndPreview(options({ onLog: 'yes' })), { code: 'DAYTONA_INVALID_ARGUMENT', message: /onLog must be a function/ })
})

test('cloneAndPreviewEvents yields progress, log lines, then the result', { timeout: 120_000 }, async () => {
  const events = []
  for await (const e of daytona.cloneAndPreviewEvents(options())) events.push(e)
  const last = events.at(-1)
  assert.equal(last.type, 'result')
  try {
    assert.equal(last.result.verify.ok, true)
    assert.equal(events.filter((e) => e.type === 'result').length, 1)
    assertOrdered(events.slice(0, -1))
    const res = await fetch(new URL('/', last.result.previewUrl), { headers: { 'x-daytona-preview-token': last.result.token } })
    assert.match(await res.text(), /streamed app/)
  } finally {
    await (await daytona.getSandbox(last.result.sandboxId)).delete()
  }
  assert.throws(() => daytona.cloneAndPreviewEvents(options({ onLog: () => {} })), { code: 'DAYTONA_INVALID_ARGUMENT' })
})

test('breaking out of cloneAndPreviewEvents cancels the pipeline and leaves no sandbox', { timeout: 120_000 }, async () => {
  const before = await count()
  let seen
  for await (const e of daytona.cloneAndPreviewEvents(options({ installCommand: 'node install.js && sleep 60' }))) {
    if (e.type === 'log') {
      seen = e.log.line
      break
    }
  }
  assert.equal(seen, 'install line 1')
  assert.equal(await count(), before)
})

test('a failing pipeline rejects the iterator with its DaytonaError', { timeout: 120_000 }, async () => {
  const before = await count()
  const it = daytona.cloneAndPreviewEvents(options({ installCommand: 'node install.js && exit 3' }))
  const events = []
  const err = await (async () => {
    for await (const e of it) events.push(e)
  })().then(
    () => assert.fail('should reject'),
    (e) => e,
  )
  assert.equal(err.code, 'PREVIEW_INSTALL_FAILED')
  assert.deepEqual(lines(events, 'install'), INSTALL_LINES)
  assert.equal(await count(), before)
})

test('the steps stream too: installDependencies, then verifyPreview the dev server', { timeout: 120_000 }, async () => {
  const { sandboxId } = await daytona.createSandbox()
  try {
    const { path } = await daytona.cloneRepository({ sandboxId, repoUrl: git.url('streamed.git'), token: TOKEN })
    const got = []
    const onLog = (l) => got.push(l)
    await daytona.installDependencies({ sandboxId, path, command: 'node install.js' }, { onLog })
    assert.deepEqual(
      got.filter((l) => l.stream === 'stdout').map((l) => l.line),
      INSTALL_LINES,
    )
    assert.ok(got.every((l) => l.step === 'install'))
    got.length = 0
    const started = await daytona.startDevServer({ sandboxId, path, command: 'node server.js', port: 3000 }, { onLog })
    const before = got.length
    const verified = await daytona.verifyPreview(
      { sandboxId, port: started.port, sessionId: started.sessionId, commandId: started.commandId },
      { onLog },
    )
    assert.equal(verified.ok, true)
    // verifyPreview follows the dev server from its start (the log is replayed).
    assert.deepEqual(
      got.slice(before).map((l) => `${l.step} ${l.line}`),
      ['start dev: booting', 'start dev: listening on 3000'],
    )
    await assert.rejects(
      daytona.installDependencies(
        { sandboxId, path, command: 'node install.js && sleep 60' },
        {
          onLog: () => {
            throw new Error('stop')
          },
        },
      ),
      { code: 'DAYTONA_CALLBACK_ERROR', step: 'install' },
    )
  } finally {
    await (await daytona.getSandbox(sandboxId)).delete()
  }
})

// One index.d.ts for both builds: checked once, in the native pass.
const typings = { timeout: 180_000, skip: isWasi() && 'the typings are the same for the WebAssembly build: checked in the native pass' }
test('the typings: the iterator narrows on type, onLog takes a PreviewLogLine, misuses fail tsc --strict', typings, () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..')
  const dir = tempDir('streams-types')
  try {
    writeFileSync(
      join(dir, 'streams.ts'),
      `import { Daytona, type PreviewLogLine } from ${JSON.stringify(join(root, 'index.js'))}
export async function use(d: Daytona): Promise<string[]> {
  const out: string[] = []
  for await (const e of d.cloneAndPreviewEvents({ repoUrl: 'x' })) {
    if (e.type === 'log') out.push(\`\${e.log.step} \${e.log.stream} \${e.log.line}\`)
    else if (e.type === 'progress') out.push(e.progress.step)
    else out.push(e.result.previewUrl)
  }
  await d.cloneAndPreview({ repoUrl: 'x', onLog: async (l: PreviewLogLine) => { out.push(l.line) } })
  await d.installDependencies({ sandboxId: 's', command: 'npm ci' }, { onLog: (l) => out.push(l.line) })
  await d.verifyPreview({ sandboxId: 's', port: 3000 }, { onLog: (l) => out.push(l.step) })
  // @ts-expect-error the iterator yields the lines: no onLog
  d.cloneAndPreviewEvents({ repoUrl: 'x', onLog: () => {} })
  // @ts-expect-error a line's step is install or start
  const bad: PreviewLogLine = { step: 'verify', stream: 'stdout', line: '' }
  // @ts-expect-error a log event has no result
  for await (const e of d.cloneAndPreviewEvents({ repoUrl: 'x' })) if (e.type === 'log') out.push(e.result.previewUrl)
  return [...out, bad.line]
}
`,
    )
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    const args = ['--strict', '--noEmit', '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext']
    args.push('--typeRoots', join(root, 'node_modules', '@types'), '--types', 'node', join(dir, 'streams.ts'))
    try {
      execFileSync(process.execPath, [tsc, ...args], { encoding: 'utf8', timeout: 170_000 })
    } catch (e) {
      assert.fail(`tsc reported errors:\n${e.stdout}${e.stderr}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

// The official @daytonaio/sdk (pinned devDependency) against `forge local`, unchanged:
// create, get, list, executeCommand, getPreviewLink, stop, start, archive, delete.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startForgeLocal } from '../crates/testkit/js/forge-local.mjs'

const { Daytona, DaytonaNotFoundError, DaytonaAuthenticationError } = await import('@daytonaio/sdk')

let backend
let daytona

before(async () => {
  backend = await startForgeLocal()
  daytona = new Daytona({ apiKey: backend.apiKey, apiUrl: backend.apiUrl })
})

after(async () => {
  const { code } = await backend.stop()
  assert.equal(code, 0, 'forge local exits cleanly on SIGTERM')
})

test('create, get, list, executeCommand, getPreviewLink, stop, start, archive, delete', { timeout: 120_000 }, async () => {
  const sandbox = await daytona.create(
    {
      image: 'node:22-bookworm',
      language: 'javascript',
      envVars: { NODE_ENV: 'development' },
      labels: { suite: 'official-sdk' },
      public: true,
    },
    { timeout: 60 },
  )
  assert.equal(sandbox.state, 'started')
  assert.equal(sandbox.public, true)
  assert.equal(sandbox.env.NODE_ENV, 'development')

  const again = await daytona.get(sandbox.id)
  assert.equal(again.id, sandbox.id)
  assert.equal(again.labels.suite, 'official-sdk')

  const listed = []
  for await (const s of daytona.list({ labels: { suite: 'official-sdk' }, limit: 1 })) listed.push(s.id)
  assert.deepEqual(listed, [sandbox.id])

  const ok = await sandbox.process.executeCommand('node -v && echo $NODE_ENV $EXTRA', 'workspace', { EXTRA: '1' }, 30)
  assert.equal(ok.exitCode, 0)
  assert.match(ok.result, /^v\d+\.\d+\.\d+\ndevelopment 1\n$/)
  const failing = await sandbox.process.executeCommand('echo oops >&2; exit 7')
  assert.equal(failing.exitCode, 7)
  assert.equal(failing.result, 'oops\n')
  await assert.rejects(sandbox.process.executeCommand('sleep 30', undefined, undefined, 1), (e) => e.statusCode === 408)

  const code = await sandbox.process.codeRun('console.log(1 + 1, process.argv.slice(2).join(" "))', { argv: ['x'] }, 30)
  assert.equal(code.exitCode, 0)
  assert.equal(code.result, '2 x\n')

  const link = await sandbox.getPreviewLink(3000)
  assert.equal(link.sandboxId, sandbox.id)
  assert.match(link.url, /^http:\/\/127\.0\.0\.1:\d+$/)
  // the preview proxy: the token opens it, nothing listening on 3000 gives 502
  const proxied = await fetch(link.url, { headers: { 'X-Daytona-Preview-Token': link.token }, redirect: 'manual' })
  assert.equal(proxied.status, 502)
  assert.ok(link.token.length >= 16)

  await sandbox.stop()
  assert.equal(sandbox.state, 'stopped')
  await sandbox.start()
  assert.equal(sandbox.state, 'started')
  const after = await sandbox.process.executeCommand('echo back')
  assert.equal(after.result, 'back\n')
  await sandbox.stop()
  await sandbox.archive()
  assert.equal(sandbox.state, 'archived')

  await sandbox.delete()
  await assert.rejects(daytona.get(sandbox.id), DaytonaNotFoundError)
})

test('a wrong key is an authentication error', async () => {
  const bad = new Daytona({ apiKey: 'wrong', apiUrl: backend.apiUrl })
  await assert.rejects(bad.get('anything'), DaytonaAuthenticationError)
})

test('sandbox events: with default settings a script waits on events and exits by itself', { timeout: 120_000 }, async () => {
  const { spawn } = await import('node:child_process')
  const script = `
    const { Daytona } = await import('@daytonaio/sdk')
    const d = new Daytona({ apiKey: process.env.K, apiUrl: process.env.U })
    const s = await d.create()
    console.log('created', s.state)
    await s.stop()
    console.log('stopped', s.state)
    await s.start()
    console.log('started', s.state)
    await s.delete()
    console.log('deleted')
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd: new URL('..', import.meta.url).pathname,
    env: { ...process.env, K: backend.apiKey, U: backend.apiUrl, DAYTONA_USE_DEPRECATED_POLLING: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  // It must end on its own: nothing kills it but the test's own timeout.
  const code = await new Promise((resolve) => child.once('exit', resolve))
  assert.equal(code, 0, out)
  assert.match(out, /created started\nstopped stopped\nstarted started\ndeleted\n/)
})

test('sandbox events: the Socket.IO gateway wants the API key', { timeout: 30_000 }, async () => {
  const { io } = await import('socket.io-client')
  const url = new URL(backend.apiUrl)
  const attempt = (token) =>
    new Promise((resolve) => {
      const socket = io(url.origin, { path: `${url.pathname}/socket.io/`, transports: ['websocket'], auth: { token }, reconnection: false })
      socket.once('connect', () => {
        socket.disconnect()
        resolve('connected')
      })
      socket.once('connect_error', (e) => {
        socket.disconnect()
        resolve(`refused: ${e.message}`)
      })
    })
  assert.equal(await attempt(backend.apiKey), 'connected')
  assert.match(await attempt(`${backend.apiKey}-wrong`), /^refused/)
  // A state change reaches a listener.
  const { io: io2 } = await import('socket.io-client')
  const socket = io2(url.origin, { path: `${url.pathname}/socket.io/`, transports: ['websocket'], auth: { token: backend.apiKey } })
  await new Promise((resolve) => socket.once('connect', resolve))
  const events = []
  socket.on('sandbox.state.updated', (e) => events.push(`${e.oldState}->${e.newState}`))
  socket.on('sandbox.created', (e) => events.push(`created ${e.state}`))
  const s = await daytona.create()
  await s.stop()
  await s.delete()
  for (let i = 0; i < 100 && events.length < 3; i++) await new Promise((r) => setTimeout(r, 20))
  socket.disconnect()
  assert.deepEqual(events, ['created started', 'started->stopped', 'stopped->destroyed'])
})

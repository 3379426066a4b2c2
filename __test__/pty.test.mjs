// sandbox.process PTY sessions from JS, against the embedded backend over real HTTP and
// WebSocket: createPty with input, output, resize and an exit code; connectPty as a second
// client; kill; list / get; an unknown id as a typed error; a throwing onData that must
// reject wait() with DAYTONA_CALLBACK_ERROR, leave the shell running and never crash the
// process. Waits are for output seen and exit codes, never for times; each test is bounded.
import test from 'node:test'
import assert from 'node:assert/strict'
import { addon, privateHome, sandboxBackend, until } from './helpers.mjs'

privateHome('pty')
const { isDaytonaError } = addon()
const backend = await sandboxBackend()
const { daytona } = backend

// A throwing user callback must never become an uncaught exception.
const uncaught = []
process.on('uncaughtException', (e) => uncaught.push(e))

let sandbox
test.before(async () => {
  sandbox = await daytona.create()
})
test.after(async () => {
  await sandbox?.delete()
  await backend.stop()
  assert.deepEqual(uncaught, [])
})

/** A terminal's output as text, and a wait for some of it. */
function screen() {
  const decoder = new TextDecoder()
  const s = {
    text: '',
    onData: (data) => {
      assert.ok(data instanceof Uint8Array)
      s.text += decoder.decode(data, { stream: true })
    },
    sees: (needle) => until(() => s.text.includes(needle), AbortSignal.timeout(60_000)),
  }
  return s
}

test('createPty: input, output, resize, list/get, a second client, exit code', { timeout: 120_000 }, async () => {
  const term = screen()
  const pty = await sandbox.process.createPty({ id: 'term', cols: 100, rows: 30, envs: { FROM_JS: 'yes' }, onData: term.onData })
  assert.equal(pty.sessionId, 'term')
  await pty.sendInput('echo hi-$((6*7)) $FROM_JS\n')
  await term.sees('hi-42 yes')

  const info = await pty.resize(120, 40)
  assert.deepEqual([info.cols, info.rows], [120, 40])
  await pty.sendInput(Buffer.from('echo size=$(stty size)\n'))
  await term.sees('size=40 120')

  const listed = await sandbox.process.listPtySessions()
  assert.deepEqual(listed.map((s) => [s.id, s.active]), [['term', true]])
  assert.equal((await sandbox.process.getPtySessionInfo('term')).cols, 120)
  const resized = await sandbox.process.resizePtySession('term', 90, 20)
  assert.deepEqual([resized.cols, resized.rows], [90, 20])

  const other = screen()
  const second = await sandbox.process.connectPty('term', { onData: other.onData })
  await pty.sendInput('echo both-$((40+2))\n')
  await other.sees('both-42')
  await second.disconnect()
  await assert.rejects(second.wait(), { code: 'DAYTONA_CONNECTION' })

  await pty.sendInput('exit 3\n')
  const done = await pty.wait()
  assert.equal(done.exitCode, 3)
  await assert.rejects(sandbox.process.getPtySessionInfo('term'), { code: 'DAYTONA_NOT_FOUND' })
})

test('kill gives 137; unknown ids and bad sizes are typed errors', { timeout: 120_000 }, async () => {
  const doomed = await sandbox.process.createPty({ id: 'doomed' })
  await doomed.sendInput('sleep 600\n')
  await doomed.kill()
  const killed = await doomed.wait()
  assert.equal(killed.exitCode, 137)
  assert.equal(killed.error, 'SIGKILL')
  assert.deepEqual(await sandbox.process.listPtySessions(), [])

  for (const call of [
    () => sandbox.process.getPtySessionInfo('nope'),
    () => sandbox.process.connectPty('nope', { onData: () => {} }),
  ]) {
    const e = await call().then(() => assert.fail('resolved'), (e) => e)
    assert.ok(isDaytonaError(e), String(e))
    assert.equal(e.code, 'DAYTONA_NOT_FOUND')
  }
  await assert.rejects(async () => sandbox.process.createPty({ id: 'x', cols: 0 }), { code: 'DAYTONA_INVALID_ARGUMENT' })
  await assert.rejects(async () => sandbox.process.createPty({ id: 'x', onData: 'not a function' }), { code: 'DAYTONA_INVALID_ARGUMENT' })
})

test('a throwing onData rejects wait() with DAYTONA_CALLBACK_ERROR; the shell lives on', { timeout: 120_000 }, async () => {
  let calls = 0
  const pty = await sandbox.process.createPty({
    id: 'throws',
    onData: () => {
      calls++
      throw new Error('user bug')
    },
  })
  // The shell's prompt alone may reach onData (and disconnect this client) before the input.
  await pty.sendInput('echo first\n').catch((e) => assert.equal(e.code, 'DAYTONA_CONNECTION'))
  await assert.rejects(pty.wait(), (e) => {
    assert.equal(e.code, 'DAYTONA_CALLBACK_ERROR')
    assert.match(e.message, /onData callback threw: user bug/)
    return true
  })
  assert.equal(calls, 1)

  // The session continues: another client reaches the same shell.
  const again = screen()
  const second = await sandbox.process.connectPty('throws', { onData: again.onData })
  await second.sendInput('echo still-$((1+2))\n')
  await again.sees('still-3')
  await second.sendInput('exit 0\n')
  assert.equal((await second.wait()).exitCode, 0)
  assert.deepEqual(uncaught, [])
})

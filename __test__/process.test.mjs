// sandbox.process beyond executeCommand, from JS, against the embedded backend over real HTTP
// and WebSocket: exec with split streams, codeRun, sessions, and live logs through callbacks
// and through the async iterator (10,000 interleaved lines each way, a slow consumer, a
// throwing callback that must reject and never crash the process).
import test from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { addon, privateHome, sandboxBackend, until } from './helpers.mjs'

privateHome('process')
const { SessionLogStream } = addon()
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

const N = 10000
/** A command printing N stdout and N stderr lines, interleaved, over a few seconds. */
const chatty = `i=1; while [ $i -le ${N} ]; do echo "out $i"; echo "err $i" >&2; ` +
  `if [ $((i % 500)) -eq 0 ]; then sleep 0.1; fi; i=$((i+1)); done`

function assertAllLines(text, prefix) {
  const lines = text.split('\n')
  assert.equal(lines.pop(), '', `${prefix}: ends with a newline`)
  assert.equal(lines.length, N, `${prefix}: ${lines.length} lines`)
  for (let i = 0; i < N; i++) {
    if (lines[i] !== `${prefix} ${i + 1}`) assert.fail(`${prefix}: line ${i} is ${JSON.stringify(lines[i])}`)
  }
}

async function startAsync(sessionId, command) {
  await sandbox.process.createSession(sessionId)
  const cmd = await sandbox.process.executeSessionCommand(sessionId, { command, runAsync: true })
  assert.equal(typeof cmd.cmdId, 'string')
  return cmd.cmdId
}

test('exec: stdout and stderr separate, exit code, cwd, env; timeout in seconds', { timeout: 120_000 }, async (t) => {
  const p = sandbox.process
  await p.executeCommand('mkdir -p workspace/project')
  const r = await p.exec('pwd; echo "to err" >&2; echo $NODE_ENV; exit 4', {
    cwd: 'workspace/project',
    timeout: 30,
    env: { NODE_ENV: 'production' },
  })
  assert.match(r.stdout, /workspace\/project\nproduction\n$/)
  assert.equal(r.stderr, 'to err\n')
  assert.equal(r.exitCode, 4)
  assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(r))).sort(), ['exitCode', 'stderr', 'stdout'])
  const plain = await p.exec('echo hi')
  assert.deepEqual(plain, { stdout: 'hi\n', stderr: '', exitCode: 0 })
  await assert.rejects(p.exec('sleep 20', { timeout: 1 }), { code: 'DAYTONA_TIMEOUT' })
  await assert.rejects(p.exec('echo x', { env: { 'BAD NAME': '1' } }), { code: 'DAYTONA_INVALID_ARGUMENT' })

  // An abort kills the command too.
  const marker = `forge-exec-abort-${process.pid}-${Date.now()}`
  const ac = new AbortController()
  const running = p.exec(`sleep 30 # ${marker}`, {}, ac.signal)
  const left = async () => (await p.executeCommand(`ps -eo args | grep -c "[s]leep 30 # ${marker}" || true`)).result.trim()
  await until(async () => (await left()) !== '0', t.signal) // it runs
  ac.abort()
  await assert.rejects(running, { code: 'DAYTONA_ABORTED' })
  await until(async () => (await left()) === '0', t.signal) // and is killed
})

// TypeScript (the default language) runs through tsx / ts-node, or node's type stripping
// (node >= 22.6). Without those, a `javascript` sandbox is used when `create` honours the
// language label.
const [major, minor] = process.versions.node.split('.').map(Number)
const canStripTypes = major > 22 || (major === 22 && minor >= 6)

test('codeRun: TypeScript, argv, env, exit code; timeout in milliseconds', async (t) => {
  let sb = sandbox
  if (!canStripTypes) {
    sb = await daytona.create({ labels: { 'code-toolbox-language': 'javascript' } })
    if (sb.labels['code-toolbox-language'] !== 'javascript') {
      await sb.delete()
      t.skip(`node ${process.versions.node} cannot run TypeScript and create() has no language option`)
      return
    }
  }
  try {
    const p = sb.process
    if (canStripTypes) {
      const greet = await p.codeRun(`
        function greet(name: string): string {
          return \`Hello, \${name}!\`;
        }
        console.log(greet("Daytona"));
      `)
      assert.equal(greet.exitCode, 0)
      assert.equal(greet.result.trim(), 'Hello, Daytona!')
    }
    const argv = await p.codeRun('console.log(`Hello, ${process.argv[2]}!`)', { argv: ['Daytona'] })
    assert.equal(argv.exitCode, 0)
    assert.equal(argv.result.trim(), 'Hello, Daytona!')
    const env = await p.codeRun('console.log(`FOO: ${process.env.FOO}`)', { env: { FOO: 'BAR' } })
    assert.equal(env.result.trim(), 'FOO: BAR')
    // A timeout that a busy machine cannot reach (the expiry is checked just below).
    const slow = await p.codeRun('setTimeout(() => console.log("Done"), 1500);', undefined, 120_000)
    assert.equal(slow.result.trim(), 'Done')
    const failed = await p.codeRun('process.exit(3)')
    assert.equal(failed.exitCode, 3)
    await assert.rejects(p.codeRun('setTimeout(() => {}, 30000)', undefined, 1000), { code: 'DAYTONA_TIMEOUT' })
  } finally {
    if (sb !== sandbox) await sb.delete()
  }
})

test('sessions: sync and async commands, cwd per command, status, logs, list, kill, delete', { timeout: 120_000 }, async (t) => {
  const p = sandbox.process
  const sid = 'dev-server-session'
  await p.createSession(sid)
  await p.executeCommand('mkdir -p workspace/app')

  const sync = await p.executeSessionCommand(sid, { command: 'export GREETING=hi; echo $GREETING; echo e >&2' })
  assert.equal(sync.exitCode, 0)
  assert.equal(sync.stdout, 'hi\n')
  assert.equal(sync.stderr, 'e\n')
  assert.ok(!/[\x01\x02]/.test(sync.output ?? ''))
  // cwd applies to that command only; the session keeps its variables and directory.
  const inApp = await p.executeSessionCommand(sid, { command: 'pwd # a trailing comment', cwd: 'workspace/app' })
  assert.match(inApp.stdout, /workspace\/app\n$/)
  const after = await p.executeSessionCommand(sid, { command: 'pwd; echo $GREETING' })
  assert.doesNotMatch(after.stdout, /workspace\/app/)
  assert.match(after.stdout, /\nhi\n$/)

  const bg = await p.executeSessionCommand(sid, { command: 'echo started; sleep 60', runAsync: true })
  assert.equal(typeof bg.cmdId, 'string')
  assert.equal(bg.exitCode, undefined)
  let status = await p.getSessionCommandStatus(sid, bg.cmdId)
  assert.equal(status.isRunning, true)
  assert.equal(status.exitCode, undefined)
  await until(async () => (await p.getSessionCommandLogs(sid, bg.cmdId)).stdout, t.signal)
  assert.deepEqual(await p.getSessionCommandLogs(sid, bg.cmdId), { stdout: 'started\n', stderr: '' })

  const info = await p.getSession(sid)
  assert.equal(info.sessionId, sid)
  assert.ok(info.commands.some((c) => c.id === bg.cmdId))
  assert.ok((await p.listSessions()).some((s) => s.sessionId === sid))

  await p.killSessionCommand(sid, bg.cmdId)
  for (let i = 0; i < 100; i++) {
    status = await p.getSessionCommand(sid, bg.cmdId)
    if (!status.isRunning) break
    await sleep(50)
  }
  assert.equal(status.isRunning, false)
  assert.notEqual(status.exitCode, 0)

  await p.deleteSession(sid)
  await assert.rejects(p.getSession(sid), { code: 'DAYTONA_NOT_FOUND' })
  await assert.rejects(p.getSessionCommandStatus('no-such-session', 'x'), { code: 'DAYTONA_NOT_FOUND' })
})

test('live logs through callbacks: 10,000 interleaved lines each, exactly once, in order', async () => {
  const sid = 'stream-callbacks'
  const cmdId = await startAsync(sid, chatty)
  let out = ''
  let err = ''
  const r = await sandbox.process.getSessionCommandLogs(
    sid,
    cmdId,
    (s) => { out += s },
    (s) => { err += s },
  )
  assert.deepEqual(r, { stdout: '', stderr: '' })
  assertAllLines(out, 'out')
  assertAllLines(err, 'err')
  const status = await sandbox.process.getSessionCommandStatus(sid, cmdId)
  assert.equal(status.exitCode, 0)
  await sandbox.process.deleteSession(sid)
})

test('live logs: a slow async callback loses nothing', async () => {
  const sid = 'stream-slow'
  const cmdId = await startAsync(sid, chatty)
  let out = ''
  let err = ''
  let calls = 0
  await sandbox.process.getSessionCommandLogs(
    sid,
    cmdId,
    async (s) => {
      if (calls++ % 10 === 0) await sleep(5)
      out += s
    },
    (s) => { err += s },
  )
  assertAllLines(out, 'out')
  assertAllLines(err, 'err')
  await sandbox.process.deleteSession(sid)
})

test('live logs through the async iterator: 10,000 interleaved lines each, exactly once, in order', async () => {
  const sid = 'stream-iterator'
  const cmdId = await startAsync(sid, chatty)
  const stream = sandbox.process.streamSessionCommandLogs(sid, cmdId)
  assert.ok(stream instanceof SessionLogStream)
  let out = ''
  let err = ''
  let pulls = 0
  for await (const chunk of stream) {
    assert.ok(chunk.stream === 'stdout' || chunk.stream === 'stderr')
    if (chunk.stream === 'stdout') out += chunk.data
    else err += chunk.data
    if (pulls++ % 50 === 0) await sleep(2) // a slow reader too
  }
  assertAllLines(out, 'out')
  assertAllLines(err, 'err')
  assert.deepEqual(await stream.next(), { done: true })
  await sandbox.process.deleteSession(sid)
})

test('the iterator: break closes it; a finished command streams its whole output', async () => {
  const sid = 'stream-break'
  const cmdId = await startAsync(sid, 'echo one; sleep 30; echo never')
  const stream = sandbox.process.streamSessionCommandLogs(sid, cmdId)
  for await (const chunk of stream) {
    assert.equal(chunk.data, 'one\n')
    break
  }
  assert.deepEqual(await stream.next(), { done: true })

  const done = await sandbox.process.executeSessionCommand(sid, { command: 'echo a; echo b >&2' })
  assert.equal(done.exitCode, 0)
  const got = { stdout: '', stderr: '' }
  for await (const c of sandbox.process.streamSessionCommandLogs(sid, done.cmdId)) got[c.stream] += c.data
  assert.deepEqual(got, { stdout: 'a\n', stderr: 'b\n' })

  await assert.rejects(sandbox.process.streamSessionCommandLogs(sid, 'no-such-cmd').next(), { code: 'DAYTONA_NOT_FOUND' })
  await sandbox.process.deleteSession(sid)
})

test('a throwing callback rejects with DAYTONA_CALLBACK_ERROR and the process survives', async () => {
  const sid = 'stream-throw'
  const cmdId = await startAsync(sid, chatty)
  let calls = 0
  await assert.rejects(
    sandbox.process.getSessionCommandLogs(sid, cmdId, () => {
      calls++
      throw new Error('user bug')
    }),
    (e) => {
      assert.equal(e.code, 'DAYTONA_CALLBACK_ERROR')
      assert.equal(e.name, 'DaytonaError')
      assert.match(e.message, /onStdout callback threw: user bug/)
      return true
    },
  )
  assert.equal(calls, 1)

  // A rejected promise from an async callback, on stderr, too.
  await assert.rejects(
    sandbox.process.getSessionCommandLogs(sid, cmdId, undefined, async () => {
      throw new Error('async bug')
    }),
    { code: 'DAYTONA_CALLBACK_ERROR', message: /onStderr callback threw: async bug/ },
  )
  // Something that is not an Error.
  await assert.rejects(
    sandbox.process.getSessionCommandLogs(sid, cmdId, () => {
      throw 'a string' // eslint-disable-line no-throw-literal
    }),
    { code: 'DAYTONA_CALLBACK_ERROR' },
  )
  await sleep(50)
  assert.deepEqual(uncaught, [])
  await sandbox.process.deleteSession(sid)
})

test('streams can be aborted', async () => {
  const sid = 'stream-abort'
  const cmdId = await startAsync(sid, 'echo x; sleep 60')
  const ac = new AbortController()
  const p = sandbox.process.getSessionCommandLogs(sid, cmdId, () => ac.abort(), undefined, ac.signal)
  await assert.rejects(p, { code: 'DAYTONA_ABORTED', name: 'AbortError' })
  const stream = sandbox.process.streamSessionCommandLogs(sid, cmdId)
  assert.equal((await stream.next()).value.data, 'x\n')
  const ac2 = new AbortController()
  const pending = stream.next(ac2.signal)
  ac2.abort()
  await assert.rejects(pending, { code: 'DAYTONA_ABORTED' })
  await stream.return()
  await sandbox.process.deleteSession(sid)
})

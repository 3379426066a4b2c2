// The official @daytonaio/sdk's PTY, code interpreter, updateEnv and metrics against
// `forge local`, unchanged: createPty / connectPty with input and output, resize, kill;
// codeInterpreter.runCode keeping state between runs, streaming, an error, a context;
// sandbox.updateEnv; sandbox.getMetricsLatest. Waits are for states (output seen, exit codes),
// never for times.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startForgeLocal } from '../crates/testkit/js/forge-local.mjs'

const sdk = await import('@daytonaio/sdk')
const { Daytona } = sdk

let backend
let sandbox

before(async () => {
  backend = await startForgeLocal()
  const daytona = new Daytona({ apiKey: backend.apiKey, apiUrl: backend.apiUrl })
  sandbox = await daytona.create({ language: 'python', envVars: { GREETING: 'hi' } })
})

after(async () => {
  await sandbox?.delete().catch(() => {})
  await backend.stop()
})

/** Resolves once `check()` holds (checked whenever output arrives, and every 50 ms). */
async function until(check, what) {
  for (let i = 0; i < 1200; i++) {
    if (check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`never saw: ${what}`)
}

test('createPty, input and output, resize, connectPty, exit and kill', { timeout: 120_000 }, async () => {
  let out = ''
  const decoder = new TextDecoder()
  const pty = await sandbox.process.createPty({
    id: 'sdk-term',
    cols: 100,
    rows: 30,
    envs: { FROM_SDK: 'yes' },
    onData: (data) => {
      out += decoder.decode(data, { stream: true })
    },
  })
  assert.equal(pty.isConnected(), true)
  await pty.sendInput('echo "[$FROM_SDK] $(stty size) $(id -un) $(tty)"\n')
  await until(() => out.includes('[yes] 30 100 daytona /dev/pts/'), 'the terminal answering')

  const info = await pty.resize(120, 40)
  assert.equal(info.cols, 120)
  assert.equal(info.rows, 40)
  await pty.sendInput('echo "size=$(stty size)"\n')
  await until(() => out.includes('size=40 120'), 'the new size')

  const listed = await sandbox.process.listPtySessions()
  assert.deepEqual(
    listed.map((s) => [s.id, s.active]),
    [['sdk-term', true]],
  )
  const got = await sandbox.process.getPtySessionInfo('sdk-term')
  assert.equal(got.cols, 120)

  // A second client on the same terminal.
  let other = ''
  const second = await sandbox.process.connectPty('sdk-term', {
    onData: (data) => {
      other += decoder.decode(data)
    },
  })
  await pty.sendInput('echo both-$((40+2))\n')
  await until(() => other.includes('both-42'), 'output on the second client')
  await second.disconnect()

  await pty.sendInput('exit 0\n')
  const done = await pty.wait()
  assert.equal(done.exitCode, 0)
  assert.equal(done.error, undefined)
  await assert.rejects(sandbox.process.getPtySessionInfo('sdk-term'), sdk.DaytonaNotFoundError)

  // kill: SIGKILL, exit code 137.
  const doomed = await sandbox.process.createPty({ id: 'sdk-doomed', onData: () => {} })
  await doomed.sendInput('sleep 600\n')
  await doomed.kill()
  const killed = await doomed.wait()
  assert.equal(killed.exitCode, 137)
  assert.match(killed.error, /SIGKILL/)
  assert.deepEqual(await sandbox.process.listPtySessions(), [])
})

test('codeInterpreter.runCode keeps state, streams, reports errors; contexts', { timeout: 120_000 }, async () => {
  const ci = sandbox.codeInterpreter
  const first = await ci.runCode('x = 20\nprint("set")')
  assert.equal(first.stdout, 'set\n')
  assert.equal(first.error, undefined)

  const streamed = []
  const second = await ci.runCode('import sys\nprint(x + 22)\nsys.stderr.write("careful\\n")', {
    onStdout: (m) => streamed.push(m.output),
  })
  assert.equal(second.stdout, '42\n')
  assert.equal(second.stderr, 'careful\n')
  // Streamed as written: print's text and its newline may come as one chunk or two (how the
  // worker's writes meet the socket depends on the machine's load), so their sum is checked.
  assert.ok(streamed.length >= 1, 'stdout was streamed to onStdout')
  assert.equal(streamed.join(''), '42\n')

  const errors = []
  const failed = await ci.runCode('def f():\n    return 1 / 0\nf()', { onError: (e) => errors.push(e.name) })
  assert.equal(failed.error.name, 'ZeroDivisionError')
  assert.equal(failed.error.value, 'division by zero')
  assert.match(failed.error.traceback, /line 2, in f/)
  assert.deepEqual(errors, ['ZeroDivisionError'])

  const withEnv = await ci.runCode('import os\nprint(os.environ["ONLY_HERE"])', { envs: { ONLY_HERE: 'here' } })
  assert.equal(withEnv.stdout, 'here\n')

  const ctx = await ci.createContext('/tmp')
  assert.equal(ctx.language, 'python')
  await ci.runCode('y = 5', { context: ctx })
  assert.equal((await ci.runCode('print(y)', { context: ctx })).stdout, '5\n')
  assert.equal((await ci.runCode('print("y" in globals())')).stdout, 'False\n')
  assert.deepEqual(
    (await ci.listContexts()).map((c) => c.id),
    [ctx.id],
  )
  await ci.deleteContext(ctx)
  assert.deepEqual(await ci.listContexts(), [])
})

test('updateEnv reaches later commands; getMetricsLatest reads the sandbox', { timeout: 60_000 }, async () => {
  const before = await sandbox.process.executeCommand('echo "${NEW_ONE-none}/${GREETING-unset}"')
  assert.equal(before.result.trim(), 'none/hi')
  await sandbox.updateEnv({ NEW_ONE: 'set by sdk' }, { unset: ['GREETING'] })
  const afterwards = await sandbox.process.executeCommand('echo "${NEW_ONE-none}/${GREETING-unset}"')
  assert.equal(afterwards.result.trim(), 'set by sdk/unset')

  const m = await sandbox.getMetricsLatest()
  assert.ok(m.cpuCount >= 1)
  assert.ok(m.memTotal >= 1 << 30)
  assert.ok(m.diskTotal >= 1 << 30)
  assert.ok(m.diskUsed > 0)
  assert.ok(m.timestamp instanceof Date && !Number.isNaN(m.timestamp.getTime()))
})

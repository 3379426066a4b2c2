// The spine from JS: lifecycle, exec and typed errors through the addon, against the embedded
// backend over real HTTP (and scripted servers for the answers it never gives).
import test from 'node:test'
import assert from 'node:assert/strict'
import { addon, privateHome, sandboxBackend, scriptedServer, deadPort } from './helpers.mjs'

privateHome('spine')
const { Daytona, Sandbox } = addon()
const backend = await sandboxBackend()
const { daytona } = backend
test.after(() => backend.stop())

test('the issue sample: create, exec with cwd/env, get, stop, start, delete', async () => {
  const sandbox = await daytona.create({
    image: 'node:22-bookworm',
    workspaceClass: 'medium',
    public: true,
    envVars: { NODE_ENV: 'development' },
  })
  assert.ok(sandbox instanceof Sandbox)
  assert.equal(sandbox.state, 'started')
  const info = JSON.parse(JSON.stringify(sandbox))
  assert.equal(info.id, sandbox.id)
  assert.equal(info.image, 'node:22-bookworm')
  assert.equal(info.cpu, 4)
  assert.equal(info.memory, 16)
  assert.equal(info.public, true)

  const r = await sandbox.process.executeCommand('node -v && echo $NODE_ENV $EXTRA', 'workspace', { EXTRA: '1' }, 30)
  assert.equal(r.exitCode, 0)
  assert.match(r.result, /^v\d+\.\d+\.\d+\ndevelopment 1\n$/)
  assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(r))).sort(), ['exitCode', 'result'])

  const again = await daytona.getSandbox(sandbox.id)
  assert.equal(again.id, sandbox.id)
  assert.equal(again.state, 'started')

  await sandbox.stop()
  assert.equal(sandbox.state, 'stopped')
  assert.equal((await daytona.getSandbox(sandbox.id)).state, 'stopped')
  await sandbox.start()
  assert.equal(sandbox.state, 'started')
  await sandbox.delete()
  await assert.rejects(daytona.getSandbox(sandbox.id), { code: 'DAYTONA_NOT_FOUND', status: 404 })
})

test('exec: cwd, exit codes, combined output, timeout kills the command', async () => {
  const sandbox = await daytona.create()
  try {
    const mk = await sandbox.process.executeCommand('mkdir -p app/sub && echo hi > app/sub/f.txt')
    assert.equal(mk.exitCode, 0)
    const cat = await sandbox.process.executeCommand('cat f.txt; echo err >&2; exit 3', 'app/sub')
    assert.equal(cat.exitCode, 3)
    assert.match(cat.result, /hi\n/)
    assert.match(cat.result, /err\n/)
    const marker = `forge-timeout-${process.pid}-${Date.now()}`
    await assert.rejects(
      sandbox.process.executeCommand(`sleep 30 # ${marker}`, undefined, undefined, 1),
      { code: 'DAYTONA_TIMEOUT', retryable: true },
    )
    // The killed command leaves no process behind.
    const ps = await sandbox.process.executeCommand(`ps -eo args | grep -c "[s]leep 30 # ${marker}" || true`)
    assert.equal(ps.result.trim(), '0')
  } finally {
    await sandbox.delete()
  }
})

test('archive needs a stopped sandbox, then keeps its files', async () => {
  const sandbox = await daytona.create()
  await sandbox.process.executeCommand('echo kept > kept.txt')
  await assert.rejects(sandbox.archive(), (e) => e.code === 'DAYTONA_BAD_REQUEST' || e.code === 'DAYTONA_CONFLICT')
  await sandbox.stop()
  await sandbox.archive()
  assert.equal(sandbox.state, 'archived')
  await sandbox.start()
  const r = await sandbox.process.executeCommand('cat kept.txt')
  assert.equal(r.result, 'kept\n')
  await sandbox.delete()
})

test('list: every page, label filter, plain data', async () => {
  const tag = `t${Date.now()}`
  const made = []
  for (let i = 0; i < 3; i++) made.push(await daytona.create({ labels: { suite: tag, i: String(i) } }))
  const other = await daytona.create({ labels: { suite: 'other' } })
  try {
    const mine = await daytona.listSandboxes({ labels: { suite: tag }, limit: 1 })
    assert.deepEqual(mine.map((s) => s.id).sort(), made.map((s) => s.id).sort())
    const one = await daytona.listSandboxes({ labels: { suite: tag, i: '1' } })
    assert.deepEqual(one.map((s) => s.id), [made[1].id])
    const json = JSON.parse(JSON.stringify(mine))
    assert.equal(json.length, 3)
    assert.equal(json[0].labels.suite, tag)
    await assert.rejects(daytona.listSandboxes({ states: ['nonsense'] }), { code: 'DAYTONA_INVALID_ARGUMENT' })
  } finally {
    for (const s of [...made, other]) await s.delete()
  }
})

test('preview url: url and token for a port; bad ports are typed errors', async () => {
  const sandbox = await daytona.create({ public: false })
  try {
    const p = await sandbox.getPreviewUrl(3000)
    assert.equal(p.sandboxId, sandbox.id)
    assert.equal(p.port, 3000)
    assert.match(p.url, /^https?:\/\//)
    assert.ok(p.token.length >= 16)
    const alias = await sandbox.getPreviewLink(3000)
    assert.equal(alias.token, p.token)
    await assert.rejects(sandbox.getPreviewUrl(0), { code: 'DAYTONA_INVALID_ARGUMENT' })
    await assert.rejects(sandbox.getPreviewUrl(70000), { code: 'DAYTONA_INVALID_ARGUMENT' })
  } finally {
    await sandbox.delete()
  }
})

test('typed errors: not found, invalid arguments, aborts', async () => {
  await assert.rejects(daytona.getSandbox('no-such-sandbox'), (e) => {
    assert.ok(e instanceof Error)
    assert.equal(e.name, 'DaytonaError')
    assert.equal(e.code, 'DAYTONA_NOT_FOUND')
    assert.equal(e.status, 404)
    assert.equal(e.retryable, false)
    return true
  })
  await assert.rejects(daytona.create({ workspaceClass: 'huge' }), { code: 'DAYTONA_INVALID_ARGUMENT' })
  assert.throws(() => new Daytona({ backend: 'moon' }), { code: 'DAYTONA_INVALID_ARGUMENT' })

  const pre = new AbortController()
  pre.abort()
  await assert.rejects(daytona.create({}, pre.signal), { name: 'AbortError', code: 'DAYTONA_ABORTED' })

  const sandbox = await daytona.create()
  try {
    const ac = new AbortController()
    let userHandler = false
    ac.signal.onabort = () => { userHandler = true }
    setTimeout(() => ac.abort(), 200)
    await assert.rejects(
      sandbox.process.executeCommand('sleep 20', undefined, undefined, undefined, ac.signal),
      { code: 'DAYTONA_ABORTED' },
    )
    assert.equal(userHandler, true, "the user's own onabort handler still runs")
  } finally {
    await sandbox.delete()
  }
})

test('typed errors: wrong key, dead server, and every status the API can answer', async () => {
  const apiUrl = await daytona.apiUrl()
  const secret = 'sk-forge-very-secret-key-123'
  const wrong = new Daytona({ apiKey: secret, apiUrl })
  await assert.rejects(wrong.getSandbox('x'), (e) => {
    assert.equal(e.code, 'DAYTONA_AUTH')
    assert.equal(e.status, 401)
    assert.ok(!JSON.stringify({ ...e, m: e.message, s: e.stack }).includes(secret))
    return true
  })

  const dead = new Daytona({ apiKey: secret, apiUrl: `http://127.0.0.1:${await deadPort()}/api` })
  await assert.rejects(dead.getSandbox('x'), (e) => {
    assert.equal(e.code, 'DAYTONA_CONNECTION')
    assert.equal(e.retryable, true)
    assert.equal(e.status, null)
    return true
  })

  const cases = [
    [403, { statusCode: 403, message: 'Forbidden', error: 'Forbidden' }, 'DAYTONA_FORBIDDEN'],
    [400, { statusCode: 400, message: 'Total CPU limit exceeded. Maximum allowed: 10.', error: 'Bad Request' }, 'DAYTONA_QUOTA_EXCEEDED'],
    [400, { statusCode: 400, message: ['name must be a string', 'cpu must be positive'], error: 'Bad Request' }, 'DAYTONA_BAD_REQUEST'],
    [409, { statusCode: 409, message: 'Sandbox state change in progress', error: 'Conflict' }, 'DAYTONA_CONFLICT'],
    [410, { statusCode: 410, message: 'session ended', code: 'SESSION_ENDED', source: 'DAYTONA_DAEMON' }, 'DAYTONA_GONE'],
    [429, { statusCode: 429, message: 'Rate limit exceeded', error: 'Too Many Requests' }, 'DAYTONA_RATE_LIMITED'],
    [500, { statusCode: 500, message: 'boom', error: 'Internal Server Error' }, 'DAYTONA_SERVER_ERROR'],
    [200, 'this is not json', 'DAYTONA_BAD_RESPONSE'],
  ]
  for (const [status, body, code] of cases) {
    const server = await scriptedServer((req, res) => {
      res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '0' })
      res.end(typeof body === 'string' ? body : JSON.stringify(body))
    })
    try {
      const client = new Daytona({ apiKey: secret, apiUrl: server.url })
      await assert.rejects(client.getSandbox('abc'), (e) => {
        assert.equal(e.code, code, `HTTP ${status} → ${code}`)
        if (status !== 200) assert.equal(e.status, status)
        assert.ok(!e.message.includes(secret))
        return true
      })
      assert.equal(server.requests[0].headers.authorization, `Bearer ${secret}`)
      assert.equal(server.requests[0].headers['x-daytona-sdk-version'], '0.218.0')
    } finally {
      await server.close()
    }
  }
})

test('typed errors: a sandbox that fails to build rejects create with the server reason', async () => {
  const failed = { id: 'sbx-1', name: 'sbx-1', state: 'build_failed', errorReason: 'image node:404 not found', toolboxProxyUrl: 'http://127.0.0.1:1/toolbox' }
  const server = await scriptedServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(failed))
  })
  try {
    const client = new Daytona({ apiKey: 'k', apiUrl: server.url })
    await assert.rejects(client.create({ image: 'node:404' }), (e) => {
      assert.equal(e.code, 'DAYTONA_SANDBOX_FAILED')
      assert.match(e.message, /image node:404 not found/)
      return true
    })
    const posts = server.requests.filter((r) => r.method === 'POST')
    assert.equal(posts.length, 1, 'create is sent once')
  } finally {
    await server.close()
  }
})

// The official @daytonaio/sdk's lifecycle and account-side operations against `forge local`,
// unchanged: volumes mounted into two sandboxes, fork, pause and resume (processes kept),
// recover, the auto-stop / auto-archive / auto-delete intervals (0 meaning the maximum for
// archive, "at once" for delete), list with sort / order / label filters, the routes with no
// local meaning (ssh access, LSP, computer use) refused in Daytona's "not supported" shape,
// session input (a line, echoed unless suppressInputEcho), linkedSandbox / secrets / kvm /
// outboundProxyUrl refused, file owner / group as the sandbox itself names them, and the build
// logs of a sandbox made from a declarative Image, the auto-pause / TTL setters (auto-stop and
// auto-pause exclusive), resize (hot: cpu / memory grow; disk: stopped, grows), refreshActivity,
// createSnapshot from a sandbox (a new sandbox from it has the files), and auto-stop enforced by
// the backend's timer (one real minute), and a sandbox whose start fails ending in a recoverable
// error that recover mends.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startForgeLocal } from '../crates/testkit/js/forge-local.mjs'
import { until } from './helpers.mjs'

const sdk = await import('@daytonaio/sdk')
const { Daytona } = sdk

let backend
let daytona
const unique = (what) => `${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

before(async () => {
  backend = await startForgeLocal()
  daytona = new Daytona({ apiKey: backend.apiKey, apiUrl: backend.apiUrl })
})

after(async () => {
  const { code } = await backend.stop()
  assert.equal(code, 0, 'forge local exits cleanly on SIGTERM')
})

/** The trimmed output of a command that must succeed. */
async function sh(sandbox, command) {
  const r = await sandbox.process.executeCommand(command)
  assert.equal(r.exitCode, 0, `${command}: ${r.result}`)
  return r.result.trim()
}

/** Daytona's "not supported" answer as the SDK surfaces it: a 400 with the code and a message. */
const notSupported = (e) => {
  assert.ok(e instanceof sdk.DaytonaBadRequestError, `${e?.constructor?.name}: ${e?.message}`)
  assert.equal(e.statusCode, 400)
  assert.equal(e.code, 'NOT_SUPPORTED', e.message)
  assert.match(e.message, /not supported/i)
  return true
}

test('volumes: create, list, get, a sandbox mounting a subpath sees what another wrote, delete', { timeout: 180_000 }, async (t) => {
  const name = unique('vol')
  const volume = await daytona.volume.create(name)
  assert.equal(volume.name, name)
  assert.equal(volume.state, 'ready')
  assert.ok((await daytona.volume.list()).some((v) => v.id === volume.id))
  assert.equal((await daytona.volume.get(name)).id, volume.id)
  await assert.rejects(daytona.volume.get(unique('missing')), sdk.DaytonaNotFoundError)
  const made = await daytona.volume.get(unique('made'), true)
  assert.equal(made.state, 'ready', 'get(name, true) creates a missing volume')
  await daytona.volume.delete(made)
  await assert.rejects(daytona.volume.get(made.name), sdk.DaytonaNotFoundError)

  const writer = await daytona.create({ volumes: [{ volumeId: volume.id, mountPath: '/home/daytona/vol' }] })
  const reader = await daytona.create({ volumes: [{ volumeId: volume.id, mountPath: '/mnt/data', subpath: 'sub' }] })
  try {
    assert.deepEqual(
      reader.volumes.map((v) => [v.volumeId, v.mountPath, v.subpath]),
      [[volume.id, '/mnt/data', 'sub']],
    )
    await sh(writer, 'mkdir -p /home/daytona/vol/sub && echo from-writer > /home/daytona/vol/sub/note.txt && echo top > /home/daytona/vol/top.txt')
    assert.equal(await sh(reader, 'cat /mnt/data/note.txt'), 'from-writer')
    assert.equal(await sh(reader, 'ls /mnt/data'), 'note.txt', 'only the subpath is mounted')
    await sh(reader, 'echo from-reader > /mnt/data/back.txt')
    assert.equal(await sh(writer, 'cat /home/daytona/vol/sub/back.txt'), 'from-reader')
    assert.equal((await reader.fs.downloadFile('/mnt/data/note.txt')).toString(), 'from-writer\n')
    // Refused while a sandbox mounts it.
    await assert.rejects(daytona.volume.delete(volume), sdk.DaytonaConflictError)
  } finally {
    await writer.delete()
    await reader.delete()
  }
  await until(() => daytona.volume.delete(volume).then(() => true, () => false), t.signal)
  await assert.rejects(daytona.volume.get(name), sdk.DaytonaNotFoundError)
  await assert.rejects(daytona.create({ volumes: [{ volumeId: volume.id, mountPath: '/mnt/x' }] }), sdk.DaytonaNotFoundError)
})

test('fork copies the files into an independent sandbox', { timeout: 180_000 }, async () => {
  const a = await daytona.create({ labels: { suite: 'lifecycle-fork' }, envVars: { FROM: 'parent' } })
  let fork
  try {
    await sh(a, 'echo original > /home/daytona/f.txt')
    const name = unique('fork')
    fork = await a.fork({ name })
    assert.notEqual(fork.id, a.id)
    assert.equal(fork.name, name)
    assert.equal(fork.state, 'started')
    assert.equal(fork.labels.suite, 'lifecycle-fork')
    assert.equal(await sh(fork, 'cat /home/daytona/f.txt; echo $FROM'), 'original\nparent')
    await sh(fork, 'echo changed > /home/daytona/f.txt')
    assert.equal(await sh(a, 'cat /home/daytona/f.txt'), 'original', 'the parent keeps its files')
  } finally {
    await fork?.delete()
    await a.delete()
  }
})

test('pause freezes the sandbox; start resumes it with its processes', { timeout: 120_000 }, async () => {
  const sandbox = await daytona.create()
  try {
    await sandbox.process.createSession('held')
    const cmd = await sandbox.process.executeSessionCommand('held', { command: 'read x; echo "got $x"', runAsync: true })
    await sandbox.pause()
    assert.equal(sandbox.state, 'paused')
    await sandbox.refreshData()
    assert.equal(sandbox.state, 'paused')
    await sandbox.start()
    assert.equal(sandbox.state, 'started')
    // The command started before the pause is still waiting on its input: it was frozen, not killed.
    await sandbox.process.sendSessionCommandInput('held', cmd.cmdId, 'after-resume')
    const logs = await sandbox.process.getSessionCommandLogs('held', cmd.cmdId, () => {}, () => {}).then(() =>
      sandbox.process.getSessionCommandLogs('held', cmd.cmdId),
    )
    assert.equal(logs.stdout, 'after-resume\ngot after-resume\n')
    // A sandbox that is not started cannot be paused.
    await sandbox.stop()
    await assert.rejects(sandbox.pause(), (e) => e instanceof sdk.DaytonaError && e.statusCode >= 400 && e.statusCode < 500)
  } finally {
    await sandbox.delete()
  }
})

test('recover is refused for a sandbox that is not in error', { timeout: 60_000 }, async () => {
  const sandbox = await daytona.create()
  try {
    await assert.rejects(sandbox.recover(), (e) => {
      assert.ok(e instanceof sdk.DaytonaBadRequestError, `${e?.constructor?.name}: ${e?.message}`)
      assert.match(e.message, /cannot be recovered/)
      return true
    })
    assert.equal(await sh(sandbox, 'echo still fine'), 'still fine')
  } finally {
    await sandbox.delete()
  }
})

test('auto-stop / auto-archive / auto-delete intervals, 0 meaning the maximum for archive', { timeout: 120_000 }, async (t) => {
  const sandbox = await daytona.create({ autoArchiveInterval: 0, autoStopInterval: 0 })
  assert.equal(sandbox.autoArchiveInterval, 30 * 24 * 60, 'autoArchiveInterval 0 at create is the maximum')
  assert.equal(sandbox.autoStopInterval, 0)
  assert.equal(sandbox.autoDeleteInterval, -1, 'auto-delete is off by default')

  await sandbox.setAutostopInterval(30)
  await sandbox.setAutoArchiveInterval(60)
  await sandbox.setAutoDeleteInterval(120)
  await sandbox.refreshData()
  assert.deepEqual([sandbox.autoStopInterval, sandbox.autoArchiveInterval, sandbox.autoDeleteInterval], [30, 60, 120])
  await sandbox.setAutoArchiveInterval(0)
  await sandbox.refreshData()
  assert.equal(sandbox.autoArchiveInterval, 30 * 24 * 60, 'setAutoArchiveInterval(0) is the maximum')
  await sandbox.setAutoDeleteInterval(-1)
  await sandbox.refreshData()
  assert.equal(sandbox.autoDeleteInterval, -1)
  await assert.rejects(sandbox.setAutostopInterval(-1), sdk.DaytonaInvalidArgumentError)

  // autoDelete 0: deleted as soon as it is stopped (by the backend's timer).
  await sandbox.setAutoDeleteInterval(0)
  await sandbox.stop()
  await until(() => daytona.get(sandbox.id).then(() => false, (e) => e instanceof sdk.DaytonaNotFoundError), t.signal)
})

test('list: labels filter, sort and order (default lastActivityAt, newest first)', { timeout: 180_000 }, async (t) => {
  const suite = unique('list')
  const made = []
  const names = ['b', 'a', 'c'].map((n) => `${suite}-${n}`)
  try {
    for (const name of names) made.push(await daytona.create({ name, labels: { suite, parity: name.endsWith('-b') ? 'even' : 'odd' } }))
    const other = await daytona.create({ labels: { suite: `${suite}-other` } })
    made.push(other)
    const listed = async (query) => {
      const out = []
      for await (const s of daytona.list({ labels: { suite }, ...query })) out.push(s.name)
      return out
    }
    // Activity in a known order: each one after the clock passed the previous one's stamp.
    for (const name of ['c', 'b', 'a'].map((n) => `${suite}-${n}`)) {
      const s = made.find((m) => m.name === name)
      await s.refreshActivity()
      await s.refreshData()
      await until(() => Date.now() > Date.parse(s.lastActivityAt), t.signal)
    }
    const [a, b, c] = ['a', 'b', 'c'].map((n) => `${suite}-${n}`)
    assert.deepEqual(await listed(), [a, b, c], 'default: lastActivityAt descending')
    assert.deepEqual(await listed({ order: 'asc' }), [c, b, a])
    assert.deepEqual(await listed({ sort: 'name', order: 'asc' }), [a, b, c])
    assert.deepEqual(await listed({ sort: 'name', order: 'desc' }), [c, b, a])
    assert.deepEqual(await listed({ sort: 'name', order: 'asc', limit: 1 }), [a, b, c], 'pages follow the order')
    assert.deepEqual(await listed({ sort: 'name', order: 'asc', labels: { suite, parity: 'odd' } }), [a, c], 'every label must match')
    await assert.rejects(listed({ sort: 'color' }), sdk.DaytonaBadRequestError)
  } finally {
    for (const s of made) await s.delete()
  }
})

test('routes with no local meaning answer "not supported" (ssh access, LSP, computer use, secrets, signed file URLs)', { timeout: 60_000 }, async () => {
  const sandbox = await daytona.create()
  try {
    await assert.rejects(sandbox.createSshAccess(60), notSupported)
    await assert.rejects(sandbox.revokeSshAccess('token'), notSupported)
    await assert.rejects(sandbox.validateSshAccess('token'), notSupported)
    const lsp = await sandbox.createLspServer('typescript', 'workspace')
    await assert.rejects(lsp.start(), notSupported)
    await assert.rejects(sandbox.computerUse.start(), notSupported)
    await assert.rejects(sandbox.computerUse.screenshot.takeFullScreen(), notSupported)
    // Vault secrets and pre-signed file URLs (their signing key) have no local meaning either.
    await assert.rejects(sandbox.updateSecrets({ API_KEY: 'my-secret' }), notSupported)
    await assert.rejects(sandbox.downloadUrl('/home/daytona/x.txt'), notSupported)
    await assert.rejects(sandbox.uploadUrl('/home/daytona/x.txt'), notSupported)
  } finally {
    await sandbox.delete()
  }
})

test('sendSessionCommandInput sends a line, echoed into the log unless suppressInputEcho', { timeout: 60_000 }, async () => {
  const sandbox = await daytona.create()
  try {
    const proc = sandbox.process
    await proc.createSession('input')
    const finished = async (cmdId) => {
      await proc.getSessionCommandLogs('input', cmdId, () => {}, () => {})
      return proc.getSessionCommandLogs('input', cmdId)
    }
    const echoed = await proc.executeSessionCommand('input', { command: 'read a; read b; echo "got $a/$b"', runAsync: true })
    await proc.sendSessionCommandInput('input', echoed.cmdId, 'one')
    await proc.sendSessionCommandInput('input', echoed.cmdId, 'two\n')
    assert.equal((await finished(echoed.cmdId)).stdout, 'one\ntwo\ngot one/two\n')
    assert.equal((await proc.getSessionCommand('input', echoed.cmdId)).exitCode, 0)

    const quiet = await proc.executeSessionCommand('input', { command: 'read a; echo "got $a"', runAsync: true, suppressInputEcho: true })
    await proc.sendSessionCommandInput('input', quiet.cmdId, 'secret')
    assert.equal((await finished(quiet.cmdId)).stdout, 'got secret\n')
    // A finished command takes no more input.
    await assert.rejects(proc.sendSessionCommandInput('input', quiet.cmdId, 'late'), (e) => e instanceof sdk.DaytonaError && e.statusCode === 410)
  } finally {
    await sandbox.delete()
  }
})

test('create with linkedSandbox (or secrets, kvm, outboundProxyUrl) is refused with a typed 400, nothing is created', { timeout: 60_000 }, async () => {
  const label = unique('linked')
  const base = await daytona.create()
  try {
    for (const option of [
      { linkedSandbox: base.id },
      { secrets: { API_KEY: 'my-secret' } },
      { kvm: true },
      { outboundProxyUrl: 'http://proxy.example:3128' },
    ]) {
      await assert.rejects(daytona.create({ ...option, labels: { suite: label } }), (e) => {
        notSupported(e)
        assert.match(e.message, new RegExp(Object.keys(option)[0]))
        return true
      })
    }
    const left = []
    for await (const s of daytona.list({ labels: { suite: label } })) left.push(s.id)
    assert.deepEqual(left, [])
  } finally {
    await base.delete()
  }
})

test('file info owner and group are the names the sandbox itself gives them', { timeout: 60_000 }, async () => {
  const sandbox = await daytona.create()
  try {
    await sandbox.fs.uploadFile(Buffer.from('mine\n'), '/home/daytona/mine.txt')
    for (const path of ['/home/daytona/mine.txt', '/home/daytona', '/etc/passwd', '/usr/bin', '/tmp']) {
      const info = await sandbox.fs.getFileDetails(path)
      const [owner, group] = (await sh(sandbox, `stat -c '%U %G' ${path}`)).split(' ')
      assert.deepEqual([info.owner, info.group], [owner, group], path)
    }
    const mine = await sandbox.fs.getFileDetails('/home/daytona/mine.txt')
    assert.deepEqual([mine.owner, mine.group], ['daytona', 'daytona'])
    assert.equal((await sandbox.fs.listFiles('/home/daytona')).find((f) => f.name === 'mine.txt').owner, 'daytona')
  } finally {
    await sandbox.delete()
  }
})

test('a sandbox built from a declarative Image has its build logs URL; others answer 404', { timeout: 300_000 }, async () => {
  const api = (path) => fetch(`${backend.apiUrl}${path}`, { headers: { authorization: `Bearer ${backend.apiKey}` } })
  const image = sdk.Image.base('node:22-bookworm').runCommands('echo "build step says $((6 * 7))" > /home/daytona/built.txt && cat /home/daytona/built.txt')
  const built = await daytona.create({ image }, { timeout: 240 })
  const plain = await daytona.create()
  try {
    assert.equal(await sh(built, 'cat /home/daytona/built.txt'), 'build step says 42')
    const res = await api(`/sandbox/${built.id}/build-logs-url`)
    assert.equal(res.status, 200)
    const { url } = await res.json()
    const logs = await (await fetch(url, { headers: { authorization: `Bearer ${backend.apiKey}` } })).text()
    assert.match(logs, /build step says 42/)
    const direct = await (await api(`/sandbox/${built.id}/build-logs`)).text()
    assert.equal(direct, logs)
    const none = await api(`/sandbox/${plain.id}/build-logs-url`)
    assert.equal(none.status, 404)
    assert.match((await none.json()).message, /no build logs/)
  } finally {
    await built.delete()
    await plain.delete()
  }
})

test('auto-pause and TTL setters: the intervals and autoDestroyAt as the API reports them', { timeout: 60_000 }, async () => {
  const sandbox = await daytona.create({ autoStopInterval: 0 })
  try {
    await sandbox.setAutoPauseInterval(45)
    await sandbox.refreshData()
    assert.equal(sandbox.autoPauseInterval, 45)
    await assert.rejects(sandbox.setAutoPauseInterval(-1), sdk.DaytonaInvalidArgumentError)
    // At most one of auto-stop and auto-pause may be non-zero.
    await assert.rejects(sandbox.setAutostopInterval(10), sdk.DaytonaBadRequestError)
    await sandbox.setAutoPauseInterval(0)
    await sandbox.setAutostopInterval(10)
    await assert.rejects(sandbox.setAutoPauseInterval(10), sdk.DaytonaBadRequestError)

    assert.equal(sandbox.autoDestroyAt ?? undefined, undefined, 'no TTL by default')
    const before = Date.now()
    await sandbox.setTtl(60)
    await sandbox.refreshData()
    const at = Date.parse(sandbox.autoDestroyAt)
    assert.ok(at >= before + 59 * 60_000 && at <= Date.now() + 61 * 60_000, `autoDestroyAt ${sandbox.autoDestroyAt}`)
    await sandbox.setTtl(0)
    await sandbox.refreshData()
    assert.equal(sandbox.autoDestroyAt ?? undefined, undefined, 'setTtl(0) clears it')
    await assert.rejects(sandbox.setTtl(-5), sdk.DaytonaInvalidArgumentError)
  } finally {
    await sandbox.delete()
  }
})

test('resize: cpu and memory grow on a started sandbox, disk only when stopped and only up', { timeout: 120_000 }, async () => {
  const sandbox = await daytona.create()
  try {
    const { cpu, memory, disk } = sandbox
    await sandbox.resize({ cpu: cpu + 1, memory: memory + 1 })
    assert.deepEqual([sandbox.cpu, sandbox.memory, sandbox.state], [cpu + 1, memory + 1, 'started'])
    await sandbox.refreshData()
    assert.deepEqual([sandbox.cpu, sandbox.memory], [cpu + 1, memory + 1])
    await assert.rejects(sandbox.resize({ disk: disk + 1 }), sdk.DaytonaBadRequestError, 'disk needs a stopped sandbox')
    await assert.rejects(sandbox.resize({ cpu }), sdk.DaytonaBadRequestError, 'a hot resize only grows')
    await assert.rejects(sandbox.resize({ gpu: 1 }), sdk.DaytonaInvalidArgumentError)
    await sandbox.stop()
    await sandbox.resize({ cpu, disk: disk + 2 })
    assert.deepEqual([sandbox.cpu, sandbox.disk], [cpu, disk + 2])
    await assert.rejects(sandbox.resize({ disk }), sdk.DaytonaBadRequestError, 'disk only grows')
    await sandbox.start()
    assert.equal(await sh(sandbox, 'echo up'), 'up')
  } finally {
    await sandbox.delete()
  }
})

test('refreshActivity moves lastActivityAt', { timeout: 60_000 }, async (t) => {
  const sandbox = await daytona.create()
  try {
    const first = Date.parse(sandbox.lastActivityAt)
    assert.ok(Number.isFinite(first), `lastActivityAt ${sandbox.lastActivityAt}`)
    await until(() => Date.now() > first, t.signal)
    await sandbox.refreshActivity()
    await sandbox.refreshData()
    assert.ok(Date.parse(sandbox.lastActivityAt) > first, `${sandbox.lastActivityAt} after ${first}`)
  } finally {
    await sandbox.delete()
  }
})

test('createSnapshot from a sandbox: a new sandbox from it starts with the files', { timeout: 240_000 }, async () => {
  const source = await daytona.create()
  const name = unique('snap')
  let child
  try {
    await sh(source, 'echo kept > /home/daytona/kept.txt')
    await source.createSnapshot(name)
    assert.equal(source.state, 'started', 'the source is back in its state once the snapshot is taken')
    const snapshot = await daytona.snapshot.get(name)
    assert.equal(snapshot.state, 'active')
    child = await daytona.create({ snapshot: name })
    assert.equal(await sh(child, 'cat /home/daytona/kept.txt'), 'kept')
    await sh(child, 'echo changed > /home/daytona/kept.txt')
    assert.equal(await sh(source, 'cat /home/daytona/kept.txt'), 'kept')
    await assert.rejects(source.createSnapshot(name), sdk.DaytonaConflictError, 'names are unique')
    // Deactivated (the SDK has no call for it: the API's route), it cannot be used; the SDK's
    // activate makes it usable again.
    const off = await fetch(`${backend.apiUrl.replace(/\/$/, '')}/snapshots/${snapshot.id}/deactivate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${backend.apiKey}` },
    })
    assert.equal(off.status, 200, await off.text())
    assert.equal((await daytona.snapshot.get(name)).state, 'inactive')
    await assert.rejects(daytona.create({ snapshot: name }), sdk.DaytonaError, 'an inactive snapshot is refused')
    assert.equal((await daytona.snapshot.activate(snapshot)).state, 'active')
    const again = await daytona.create({ snapshot: name })
    assert.equal(await sh(again, 'cat /home/daytona/kept.txt'), 'kept')
    await again.delete()
  } finally {
    await child?.delete()
    await source.delete()
    await daytona.snapshot.delete(await daytona.snapshot.get(name)).catch(() => {})
  }
})

test('autoStopInterval is enforced: an idle sandbox stops after its minute', { timeout: 200_000 }, async () => {
  const sandbox = await daytona.create({ autoStopInterval: 1 })
  try {
    assert.equal(sandbox.autoStopInterval, 1)
    // The backend's timer checks every 10 s; a minute without activity stops it.
    await sandbox.waitUntilStopped(150)
    await sandbox.refreshData()
    assert.equal(sandbox.state, 'stopped')
    await sandbox.start()
    assert.equal(await sh(sandbox, 'echo again'), 'again')
  } finally {
    await sandbox.delete()
  }
})

test('a sandbox whose start fails ends in error with its reason; recover starts it once the cause is gone', { timeout: 180_000 }, async (t) => {
  const volume = await daytona.volume.create(unique('vol-recover'))
  const owner = await daytona.create({ volumes: [{ volumeId: volume.id, mountPath: '/home/daytona/vol' }] })
  let broken
  try {
    // A link where another sandbox's subpath should be: mounting it would leave the volume,
    // so that sandbox's container refuses to start.
    await sh(owner, 'ln -s /etc /home/daytona/vol/sub')
    broken = await daytona.create({ volumes: [{ volumeId: volume.id, mountPath: '/mnt/data', subpath: 'sub' }] })
    await until(async () => {
      await broken.refreshData()
      return broken.state === 'error'
    }, t.signal)
    assert.match(broken.errorReason, /cannot mount a volume at \/mnt\/data: sub of the volume is a symbolic link/)
    assert.ok(!broken.errorReason.includes(backend.home), 'no host path in the reason')
    assert.equal(broken.recoverable, true)

    await sh(owner, 'rm /home/daytona/vol/sub && mkdir /home/daytona/vol/sub && echo mended > /home/daytona/vol/sub/f.txt')
    await broken.recover()
    assert.equal(broken.state, 'started')
    assert.equal(await sh(broken, 'cat /mnt/data/f.txt'), 'mended')
    await broken.refreshData()
    assert.equal(broken.state, 'started')
    assert.equal(broken.errorReason ?? undefined, undefined)
    assert.equal(broken.recoverable, false)
    await assert.rejects(broken.recover(), sdk.DaytonaBadRequestError, 'a started sandbox is not recovered')
  } finally {
    await broken?.delete()
    await owner.delete()
  }
  await until(() => daytona.volume.delete(volume).then(() => true, () => false), t.signal)
})

// Snapshots, volumes and the sandbox operations beside the lifecycle (fork, createSnapshot,
// pause, updateNetworkSettings, signed preview URLs) through our binding, against the embedded
// backend with real containers.
import test from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { addon, privateHome, until } from './helpers.mjs'
import { reachableFromSandboxes } from '../crates/testkit/js/forge-local.mjs'

privateHome('objects')
// A server of this machine that sandboxes may reach (FORGE_SANDBOX_HOST_PORTS): listed before
// the embedded backend starts (at the first call), which reads it once.
const host = http.createServer((req, res) => res.end('host-ok'))
await new Promise((resolve) => host.listen(0, '127.0.0.1', resolve))
reachableFromSandboxes(host.address().port)

const { Daytona } = addon()
const daytona = new Daytona({ backend: 'local' })
const unique = (what) => `${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`

test.after(async () => {
  await new Promise((resolve) => host.close(resolve))
})

/** The trimmed output of a command that must succeed. */
async function sh(sandbox, command) {
  const r = await sandbox.process.executeCommand(command)
  assert.equal(r.exitCode, 0, `${command}: ${r.result}`)
  return r.result.trim()
}

test('snapshots: create from an image, get, list, start a sandbox from it, delete', { timeout: 120_000 }, async () => {
  const name = unique('snap')
  const snap = await daytona.snapshot.create({ name, image: 'node:22-bookworm' })
  assert.equal(snap.name, name)
  assert.equal(snap.state, 'active')
  assert.equal(snap.imageName, 'node:22-bookworm')
  assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap, 'plain data')

  const byName = await daytona.snapshot.get(name)
  assert.equal(byName.id, snap.id)
  assert.equal((await daytona.snapshot.get(snap.id)).name, name)
  const page = await daytona.snapshot.list({ page: 1, limit: 200 })
  assert.ok(page.items.some((s) => s.id === snap.id), JSON.stringify(page))
  assert.equal(page.page, 1)
  assert.ok(page.total >= 1 && page.totalPages >= 1)

  const sandbox = await daytona.create({ snapshot: name })
  try {
    assert.equal(sandbox.toJSON().snapshot, name)
    assert.equal(await sh(sandbox, 'echo up'), 'up')
  } finally {
    await sandbox.delete()
  }

  await daytona.snapshot.delete(byName)
  await assert.rejects(daytona.snapshot.get(name), { code: 'DAYTONA_NOT_FOUND' })
  await assert.rejects(daytona.snapshot.create({ name: unique('bad') }), { code: 'DAYTONA_INVALID_ARGUMENT' })
  await assert.rejects(daytona.snapshot.delete({}), { code: 'DAYTONA_INVALID_ARGUMENT' })
})

test('volumes: create, get, list; two sandboxes mounting one share its files; delete', { timeout: 180_000 }, async (t) => {
  const volume = await daytona.volume.create(unique('vol'))
  assert.equal(volume.state, 'ready')
  assert.equal((await daytona.volume.get(volume.name)).id, volume.id)
  assert.ok((await daytona.volume.list()).some((v) => v.id === volume.id))
  await assert.rejects(daytona.volume.get(unique('missing')), { code: 'DAYTONA_NOT_FOUND' })
  const made = await daytona.volume.get(unique('made'), true)
  assert.ok(made.id, 'get(name, true) creates a missing volume')
  await daytona.volume.delete(made.id)

  const mount = [{ volumeId: volume.id, mountPath: '/home/daytona/shared' }]
  const a = await daytona.create({ volumes: mount })
  const b = await daytona.create({ volumes: mount })
  try {
    await a.fs.uploadFile(Buffer.from('uploaded by a\n'), '/home/daytona/shared/note.txt')
    assert.equal((await b.fs.downloadFile('/home/daytona/shared/note.txt')).toString(), 'uploaded by a\n')
    assert.equal(await sh(b, 'cat /home/daytona/shared/note.txt'), 'uploaded by a')
    await sh(b, 'echo written by b > /home/daytona/shared/back.txt')
    assert.equal(await sh(a, 'cat /home/daytona/shared/back.txt'), 'written by b')
  } finally {
    await a.delete()
    await b.delete()
  }
  // Refused while a sandbox still mounts it: the deletes above release it.
  await until(() => daytona.volume.delete(volume).then(() => true, () => false), t.signal)
  assert.ok(!(await daytona.volume.list()).some((v) => v.id === volume.id))
})

test('fork copies the files; createSnapshot makes a snapshot of them', { timeout: 180_000 }, async () => {
  const a = await daytona.create()
  const made = []
  try {
    await a.fs.uploadFile(Buffer.from('original'), 'workspace/f.txt')
    const name = unique('fork')
    const fork = await a.fork({ name })
    made.push(fork)
    assert.notEqual(fork.id, a.id)
    assert.equal(fork.name, name)
    assert.equal(fork.state, 'started')
    assert.equal((await fork.fs.downloadFile('workspace/f.txt')).toString(), 'original')
    await fork.fs.uploadFile(Buffer.from('changed in the fork'), 'workspace/f.txt')
    assert.equal((await a.fs.downloadFile('workspace/f.txt')).toString(), 'original', 'independent')

    const snapshot = unique('from-sandbox')
    await a.createSnapshot(snapshot)
    assert.equal((await daytona.snapshot.get(snapshot)).state, 'active')
    const c = await daytona.create({ snapshot })
    made.push(c)
    assert.equal((await c.fs.downloadFile('workspace/f.txt')).toString(), 'original')
  } finally {
    for (const s of made) await s.delete()
    await a.delete()
  }
})

test('pause freezes the sandbox, start resumes it with its files', { timeout: 120_000 }, async () => {
  const sandbox = await daytona.create()
  try {
    await sh(sandbox, 'echo kept > kept.txt')
    await sandbox.pause()
    assert.equal(sandbox.state, 'paused')
    assert.equal((await sandbox.refresh()).state, 'paused')
    await sandbox.start()
    assert.equal(sandbox.state, 'started')
    assert.equal(await sh(sandbox, 'cat kept.txt'), 'kept')
  } finally {
    await sandbox.delete()
  }
})

test('updateNetworkSettings({ networkBlockAll }) blocks and restores the outbound network', { timeout: 120_000 }, async (t) => {
  const sandbox = await daytona.create()
  const { port } = host.address()
  const probe = `node -e "fetch('http://127.0.0.1:${port}/').then((r) => r.text()).then((t) => console.log(t), () => console.log('blocked'))"`
  try {
    assert.equal(await sh(sandbox, probe), 'host-ok', 'the allowed host port is reachable')
    await sandbox.updateNetworkSettings({ networkBlockAll: true })
    await until(async () => (await sh(sandbox, probe)) === 'blocked', t.signal)
    await sandbox.updateNetworkSettings({ networkBlockAll: false })
    await until(async () => (await sh(sandbox, probe)) === 'host-ok', t.signal)
  } finally {
    await sandbox.delete()
  }
})

test('updateNetworkSettings({ networkAllowList }) limits the sandbox to the listed addresses', { timeout: 180_000 }, async () => {
  const sandbox = await daytona.create()
  const code = 'curl -s -m 20 -o /dev/null -w %{http_code} https://registry.npmjs.org/; true'
  try {
    const registry = await sh(sandbox, "getent hosts registry.npmjs.org | cut -d' ' -f1")
    assert.ok(registry, 'the registry resolves')
    await sandbox.updateNetworkSettings({ networkAllowList: '198.51.100.0/24' })
    assert.equal(await sh(sandbox, code), '000', 'an address outside the list is unreachable')
    await sandbox.updateNetworkSettings({ networkAllowList: `198.51.100.0/24,${registry}/32` })
    assert.equal(await sh(sandbox, code), '200', 'a listed address is reachable')
    await sandbox.updateNetworkSettings({ networkAllowList: '' })
    assert.equal(await sh(sandbox, code), '200')
    await assert.rejects(sandbox.updateNetworkSettings({ networkAllowList: 'example.com' }), (e) => e.code === 'DAYTONA_BAD_REQUEST' && /example\.com/.test(e.message))
    await assert.rejects(sandbox.updateNetworkSettings({}), (e) => e.code === 'DAYTONA_INVALID_ARGUMENT')
  } finally {
    await sandbox.delete()
  }
  const listed = await daytona.create({ networkAllowList: '198.51.100.0/24' })
  try {
    assert.equal(await sh(listed, code), '000', 'limited from its first command')
  } finally {
    await listed.delete()
  }
})

test('a signed preview URL opens the preview without a header until it is expired', { timeout: 120_000 }, async (t) => {
  const sandbox = await daytona.create()
  try {
    const server = "require('http').createServer((q, s) => s.end('signed:' + q.url + ' ' + JSON.stringify(q.headers))).listen(3000)"
    await sandbox.fs.uploadFile(Buffer.from(server), 'web.js')
    await sandbox.process.createSession('web')
    await sandbox.process.executeSessionCommand('web', { command: 'node web.js', runAsync: true })

    const link = await sandbox.getSignedPreviewUrl(3000, 600)
    assert.equal(link.sandboxId, sandbox.id)
    assert.equal(link.port, 3000)
    assert.ok(link.url.startsWith('http://127.0.0.1:') && link.url.includes(link.token), link.url)
    // Until the server answers (the test's timeout bounds the wait).
    await until(async () => (await fetch(link.url).catch(() => null))?.status === 200, t.signal)
    const res = await fetch(`${link.url}page?x=1`)
    assert.equal(res.status, 200)
    const body = await res.text()
    assert.ok(body.startsWith('signed:/page?x=1 '), body)
    assert.ok(!body.includes(link.token), 'the token never reaches the dev server')

    await sandbox.expireSignedPreviewUrl(3000, link.token)
    assert.equal((await fetch(link.url, { redirect: 'manual' })).status, 401)
    await assert.rejects(sandbox.getSignedPreviewUrl(3000, 86_401), { code: 'DAYTONA_BAD_REQUEST' })
    await assert.rejects(sandbox.getSignedPreviewUrl(0), { code: 'DAYTONA_INVALID_ARGUMENT' })
  } finally {
    await sandbox.delete()
  }
})

test('timers, recover and listSandboxes sort / order', { timeout: 120_000 }, async () => {
  const suite = unique('order')
  const made = []
  try {
    for (const n of ['b', 'a', 'c']) made.push(await daytona.create({ name: `${suite}-${n}`, labels: { suite } }))
    const [s] = made
    await s.setAutostopInterval(30)
    await s.setAutoArchiveInterval(0)
    await s.setAutoDeleteInterval(-1)
    const info = s.toJSON()
    assert.deepEqual([info.autoStopInterval, info.autoArchiveInterval, info.autoDeleteInterval], [30, 30 * 24 * 60, -1])
    assert.equal((await s.refresh()).autoArchiveInterval, 30 * 24 * 60, '0 is the maximum, as the server keeps it')
    await assert.rejects(s.setAutostopInterval(-1), { code: 'DAYTONA_INVALID_ARGUMENT' })
    await assert.rejects(s.recover(), { code: 'DAYTONA_BAD_REQUEST' })

    const names = async (query) => (await daytona.listSandboxes({ labels: { suite }, ...query })).map((x) => x.toJSON().name.slice(suite.length + 1))
    assert.deepEqual(await names({ sort: 'name', order: 'asc' }), ['a', 'b', 'c'])
    assert.deepEqual(await names({ sort: 'name', order: 'desc', limit: 1 }), ['c', 'b', 'a'])
    assert.deepEqual(await names({ sort: 'createdAt', order: 'asc' }), ['b', 'a', 'c'])
    assert.deepEqual(await names({}), ['c', 'a', 'b'], 'default: the most recently active first')
    await assert.rejects(daytona.listSandboxes({ sort: 'color' }), { code: 'DAYTONA_INVALID_ARGUMENT' })
    await assert.rejects(daytona.listSandboxes({ order: 'up' }), { code: 'DAYTONA_INVALID_ARGUMENT' })
  } finally {
    for (const s of made) await s.delete()
  }
})

// The official @daytonaio/sdk's `domainAllowList` against `forge local`, unchanged: a sandbox
// created with it reaches the listed name and nothing else, and `updateNetworkSettings` changes
// it on the running sandbox. Two servers on 127.0.0.1 stand for the names (the backend's
// proxies are told where they are with FORGE_EGRESS_HOSTS, as for a local mirror); the other
// server's port is even relayed into sandboxes (FORGE_SANDBOX_HOST_PORTS), so a raw connection
// would reach it if the sandbox had any way out of its own.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startForgeLocal, reachableFromSandboxes, egressHosts, namedServer } from '../crates/testkit/js/forge-local.mjs'

const { Daytona } = await import('@daytonaio/sdk')

let backend, daytona, allowed, other
before(async () => {
  ;[allowed, other] = [await namedServer('allowed'), await namedServer('other')]
  egressHosts({ 'allowed.test:80': allowed.port, 'other.test:80': other.port })
  reachableFromSandboxes(other.port)
  backend = await startForgeLocal()
  daytona = new Daytona({ apiKey: backend.apiKey, apiUrl: backend.apiUrl })
})

after(async () => {
  await backend?.stop()
  await allowed?.close()
  await other?.close()
})

test('domainAllowList: the listed name is reached, nothing else is; changed live', { timeout: 300_000 }, async () => {
  const sandbox = await daytona.create({ domainAllowList: 'allowed.test' })
  try {
    assert.equal(sandbox.domainAllowList, 'allowed.test')
    const sh = async (cmd) => (await sandbox.process.executeCommand(cmd, undefined, undefined, 60)).result.trim()
    assert.equal(await sh('curl -s -m 20 http://allowed.test/'), 'allowed')
    assert.equal(await sh('getent hosts other.test || echo unresolved'), 'unresolved')
    assert.match(await sh("curl -s -m 20 -H 'Host: other.test' http://allowed.test/"), /refused: other\.test is not in/)
    assert.doesNotMatch(await sh(`curl -s -m 10 http://127.0.0.1:${other.port}/; echo " exit $?"`), /other exit/)
    assert.equal(other.hits, 0, 'nothing reached the other server')

    await sandbox.updateNetworkSettings({ domainAllowList: 'other.test' })
    assert.equal(await sh('curl -s -m 20 http://other.test/'), 'other')
    assert.equal(await sh('getent hosts allowed.test || echo unresolved'), 'unresolved')
    await sandbox.refreshData()
    assert.equal(sandbox.domainAllowList, 'other.test')
  } finally {
    await sandbox.delete()
  }
})

// `domainAllowList` through our binding, against the embedded backend in this process: a
// sandbox created with it reaches the listed name and nothing else (attacked from inside:
// by name, by the other server's raw port relayed into sandboxes, by a forged Host sent to the
// allowed name's proxy), `updateNetworkSettings` changes and lifts it on the running sandbox,
// and a bad list is a typed error naming the field. Two servers on 127.0.0.1 stand for the
// names (FORGE_EGRESS_HOSTS tells the backend's proxies where they are, as for a local mirror).
import test from 'node:test'
import assert from 'node:assert/strict'
import { addon, privateHome } from './helpers.mjs'
import { reachableFromSandboxes, egressHosts, namedServer } from '../crates/testkit/js/forge-local.mjs'

privateHome('network')
// Set before the embedded backend starts (at the first call), which reads them once.
const [allowed, other] = [await namedServer('allowed'), await namedServer('other')]
egressHosts({ 'allowed.test:80': allowed.port, 'other.test:80': other.port })
reachableFromSandboxes(other.port)

const { Daytona } = addon()
const daytona = new Daytona({ backend: 'local' })

test.after(async () => {
  await allowed.close()
  await other.close()
})

/** The trimmed output of a command (its exit code not judged: attacks are expected to fail). */
async function sh(sandbox, command) {
  return (await sandbox.process.executeCommand(command, undefined, undefined, 60)).result.trim()
}

test('create({ domainAllowList }): the listed name is reached, nothing else is; changed and lifted live', { timeout: 300_000 }, async () => {
  const sandbox = await daytona.create({ domainAllowList: ['Allowed.test'] })
  try {
    assert.equal(sandbox.domainAllowList, 'allowed.test')
    assert.equal(sandbox.toJSON().domainAllowList, 'allowed.test')
    assert.match(await sh(sandbox, 'getent hosts allowed.test'), /^10\.0\.2\.3 /, 'resolved by the backend, to its proxy')
    assert.equal(await sh(sandbox, 'curl -s -m 20 http://allowed.test/'), 'allowed')

    const attacks = [
      'getent hosts other.test || echo unresolved',
      'curl -s -m 10 http://other.test/; echo " exit $?"',
      `curl -s -m 10 http://127.0.0.1:${other.port}/; echo " exit $?"`,
      `curl -s -m 10 http://10.0.2.2:${other.port}/; echo " exit $?"`,
      "curl -s -m 20 -H 'Host: other.test' http://allowed.test/; echo \" exit $?\"",
    ]
    const breaches = []
    for (const attack of attacks) {
      const out = await sh(sandbox, attack)
      if (/(^|[^.])other( |$)/.test(out)) breaches.push(`${attack} => ${out}`)
    }
    assert.deepEqual(breaches, [], 'attacks that got through')
    assert.equal(other.hits, 0, 'nothing reached the other server')
    assert.match(await sh(sandbox, "curl -s -m 20 -H 'Host: other.test' http://allowed.test/"), /other\.test is not in this sandbox's domainAllowList/)

    // The official SDK's comma-separated form works too.
    await sandbox.updateNetworkSettings({ domainAllowList: 'other.test, ' })
    assert.equal(sandbox.domainAllowList, 'other.test')
    assert.equal(await sh(sandbox, 'curl -s -m 20 http://other.test/'), 'other')
    assert.equal(await sh(sandbox, 'getent hosts allowed.test || echo unresolved'), 'unresolved')

    await sandbox.updateNetworkSettings({ domainAllowList: [] })
    assert.equal(sandbox.domainAllowList, null)
    assert.equal(await sh(sandbox, `curl -s -m 20 http://127.0.0.1:${other.port}/`), 'other', 'lifted: the sandbox routes by itself again')
  } finally {
    await sandbox.delete()
  }
})

test('a bad domainAllowList is a DAYTONA_INVALID_ARGUMENT naming the field, and nothing is created', { timeout: 120_000 }, async () => {
  const before = (await daytona.listSandboxes()).length
  const invalid = async (f, message) => {
    // Bad options are refused when the call is made (a throw) or when it runs (a rejection).
    const e = await (async () => f())().then(
      () => assert.fail('accepted'),
      (e) => e,
    )
    assert.equal(e.code, 'DAYTONA_INVALID_ARGUMENT', e.message)
    assert.match(e.message, message)
  }
  await invalid(() => daytona.create({ domainAllowList: ['ok.test', 42] }), /^domainAllowList\[1\] must be a string$/)
  await invalid(() => daytona.create({ domainAllowList: 42 }), /^domainAllowList must be an array of names or a comma-separated string$/)
  await invalid(() => daytona.create({ domainAllowList: { name: 'x.test' } }), /^domainAllowList must be/)
  await invalid(() => daytona.create({ domainAllowList: ['http://x.test/'] }), /domainAllowList: "http:\/\/x\.test\/" is not a domain name/)
  await invalid(() => daytona.create({ domainAllowList: 'a.test,b c.test' }), /domainAllowList: "b c\.test" is not a domain name/)
  await invalid(() => daytona.create({ domainAllowList: ['a.test,b.test'] }), /domainAllowList: "a\.test,b\.test"/)
  const huge = Array.from({ length: 100_000 }, (_, i) => `n${i}.test`)
  await invalid(() => daytona.create({ domainAllowList: huge }), /domainAllowList: more than 64 entries/)
  await invalid(() => daytona.create({ domainAllowList: huge.join(',') }), /domainAllowList: more than 64 entries/)
  const long = 'x'.repeat(1_000_000)
  const e = await (async () => daytona.create({ domainAllowList: [long] }))().catch((e) => e)
  assert.equal(e.code, 'DAYTONA_INVALID_ARGUMENT')
  assert.ok(e.message.length < 200, `a huge entry is not echoed whole (${e.message.length} characters)`)
  assert.equal((await daytona.listSandboxes()).length, before, 'nothing was created')

  const sandbox = await daytona.create()
  try {
    await invalid(() => sandbox.updateNetworkSettings({ domainAllowList: ['*'] }), /domainAllowList: "\*" is not a domain name/)
    await invalid(() => sandbox.updateNetworkSettings({ domainAllowList: [null] }), /^domainAllowList\[0\] must be a string$/)
    await invalid(() => sandbox.updateNetworkSettings({}), /domainAllowList/)
    assert.equal(sandbox.domainAllowList, null)
  } finally {
    await sandbox.delete()
  }
})

// Runs the whole function with @inngest/test on a real backend (the embedded one in tests:
// FORGE_BACKEND=local) against the repository at $EXAMPLE_REPO_URL (token $EXAMPLE_GIT_TOKEN).
//
// Production stores every step result as JSON and gives the rest of the run the parsed copy;
// @inngest/test hands over the original object. `jsonSteps` does what production does, so a
// step that returned a class instance (a Sandbox) would break here as it would in production.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InngestTestEngine, mockCtx } from '@inngest/test'
import { cloneAndPreviewRepository } from '../src/functions.js'
import { integrations, projects } from '../src/db.js'
import { daytona } from '../src/daytona.js'
import { STEP_IDS } from './steps.js'

const REPO_URL = process.env.EXAMPLE_REPO_URL
const TOKEN = process.env.EXAMPLE_GIT_TOKEN
const EXPECT = process.env.EXAMPLE_EXPECT_BODY ?? ''

const roundTrips = []
function jsonSteps(raw) {
  const ctx = mockCtx(raw)
  const run = ctx.step.run
  ctx.step.run = async (id, fn) => {
    const value = await run(id, fn)
    const copy = value === undefined ? undefined : JSON.parse(JSON.stringify(value))
    roundTrips.push({ id, value, copy })
    return copy
  }
  return ctx
}

test('clone → detect → install → start → verify, every step result JSON round-tripped', { timeout: 240_000 }, async (t) => {
  assert.ok(REPO_URL && TOKEN, 'EXAMPLE_REPO_URL and EXAMPLE_GIT_TOKEN are set')
  integrations.set('user-1', { provider: 'github', access_token: TOKEN })
  const engine = new InngestTestEngine({ function: cloneAndPreviewRepository, transformCtx: jsonSteps })
  const { result, error, state } = await engine.execute({
    events: [{ name: 'github/clone-and-preview', data: { projectId: 'p-1', repoUrl: REPO_URL, userId: 'user-1' } }],
  })
  const sandboxId = result?.sandboxId
  t.after(async () => {
    if (sandboxId) await (await daytona.getSandbox(sandboxId)).delete()
  })
  assert.equal(error, undefined, `the run failed: ${error?.stack ?? error}`)
  assert.equal(result.success, true)
  assert.equal(result.framework, 'node')

  // Every step ran, and its result survives JSON unchanged (plain data, no class, no secret).
  const ids = STEP_IDS
  const values = await Promise.all(Object.values(state)) // keyed by hashed step ids
  assert.equal(values.length, ids.length)
  for (const value of values) assert.deepEqual(JSON.parse(JSON.stringify(value)), value, 'a step returns plain JSON data')
  assert.deepEqual([...new Set(roundTrips.map((r) => r.id))], ids)
  for (const r of roundTrips) assert.deepEqual(r.copy, r.value, `${r.id}: the JSON copy equals the result`)
  for (const r of roundTrips.filter((r) => r.id !== 'get-github-integration')) {
    assert.ok(!JSON.stringify(r.copy).includes(TOKEN), `${r.id}: no token in the step result`)
  }

  // The database row, and the preview really serves the repository's app.
  assert.equal(projects.get('p-1').status, 'deployed')
  assert.equal(projects.get('p-1').sandbox_url, result.previewUrl)
  const sandbox = await daytona.getSandbox(sandboxId)
  const { token } = await sandbox.getPreviewUrl(3000)
  const res = await fetch(result.previewUrl, { headers: { 'x-daytona-preview-token': token } }) // public: ignored
  assert.equal(res.status, 200)
  assert.ok((await res.text()).includes(EXPECT))
  const gitConfig = (await sandbox.fs.readFile('workspace/project/.git/config')).toString()
  assert.ok(!gitConfig.includes(TOKEN), 'no token in .git/config')
})

test('a missing GitHub integration fails the run without creating a sandbox', { timeout: 60_000 }, async () => {
  const before = (await daytona.listSandboxes()).length
  const engine = new InngestTestEngine({ function: cloneAndPreviewRepository, transformCtx: jsonSteps })
  const { error } = await engine.execute({
    events: [{ name: 'github/clone-and-preview', data: { projectId: 'p-2', repoUrl: REPO_URL, userId: 'nobody' } }],
  })
  assert.match(String(error?.message ?? error), /GitHub integration not found/)
  assert.equal((await daytona.listSandboxes()).length, before)
})

test('a wrong token is not retried: the clone step fails with a NonRetriableError, no token in it', { timeout: 120_000 }, async () => {
  integrations.set('user-3', { provider: 'github', access_token: 'ghp_wrong_token_value' })
  const engine = new InngestTestEngine({ function: cloneAndPreviewRepository, transformCtx: jsonSteps })
  const { error } = await engine.execute({
    events: [{ name: 'github/clone-and-preview', data: { projectId: 'p-3', repoUrl: REPO_URL, userId: 'user-3' } }],
  })
  assert.equal(error?.name, 'NonRetriableError', String(error?.stack ?? error))
  assert.ok(!String(error.message).includes('ghp_wrong_token_value'))
  // The sandbox of the failed run is still there (@inngest/test does not run `onFailure`;
  // test/retries.test.js does); remove it.
  const created = roundTrips.filter((r) => r.id === 'create-sandbox').at(-1)?.copy
  assert.ok(created, 'the run got as far as the clone')
  await (await daytona.getSandbox(created.sandboxId)).delete()
  assert.match(error.message, /^[A-Z_]+: /, 'the message starts with the stable error code')
})

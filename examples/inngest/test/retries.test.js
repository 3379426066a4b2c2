// The function under Inngest's retries, on a real backend (the embedded one in tests:
// FORGE_BACKEND=local) against the repository at $EXAMPLE_RETRY_REPO_URL (token
// $EXAMPLE_GIT_TOKEN).
//
// @inngest/test runs one attempt and stops at the first error ("no retries modelled"), and
// does not run `onFailure`. `runWithRetries` does what Inngest does: every attempt is a new
// invocation of the function with the same event, the steps already done replayed from their
// stored JSON, the failed step run again, until the run ends, a NonRetriableError is thrown or
// a step has failed more than `retries` times. `failureHandler` runs the function's own
// `onFailure` with the `inngest/function.failed` event Inngest sends.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { InngestTestEngine, mockCtx } from '@inngest/test'
import { errors } from 'inngest/internals'
import { cloneAndPreviewRepository } from '../src/functions.js'
import { integrations, projects } from '../src/db.js'
import { daytona } from '../src/daytona.js'
import { STEP_IDS } from './steps.js'

const REPO_URL = process.env.EXAMPLE_RETRY_REPO_URL
const TOKEN = process.env.EXAMPLE_GIT_TOKEN
const EXPECT = process.env.EXAMPLE_EXPECT_BODY ?? ''

/**
 * Runs `fn` for `event` with Inngest's retries. `failOnce`: step ids that fail once right
 * after their work is done (the side effect made, the result lost), as a crash or a timeout
 * of the step's HTTP request would. Returns the last attempt's `{ result, error }` with
 * `attempts` (step id → times its code ran) and `values` (step id → what each run returned,
 * before and after JSON).
 */
async function runWithRetries(fn, event, { failOnce = [] } = {}) {
  const retries = fn.opts?.retries ?? 3
  const done = new Map() // step id → its result as Inngest stores it (JSON)
  const failures = new Map()
  const attempts = new Map()
  const values = new Map()
  const toFail = new Set(failOnce)
  let failed = null
  const transformCtx = (raw) => {
    const ctx = mockCtx(raw)
    const run = ctx.step.run
    ctx.step.run = (id, stepFn) =>
      run(id, async () => {
        attempts.set(id, (attempts.get(id) ?? 0) + 1)
        try {
          const value = await stepFn()
          const copy = value === undefined ? undefined : JSON.parse(JSON.stringify(value))
          values.set(id, [...(values.get(id) ?? []), { value, copy }])
          if (toFail.delete(id)) throw new Error(`${id}: the step's answer was lost after its work was done`)
          done.set(id, copy)
          return copy
        } catch (e) {
          failures.set(id, (failures.get(id) ?? 0) + 1)
          failed = { id, error: e }
          throw e
        }
      })
    return ctx
  }
  for (;;) {
    failed = null
    const engine = new InngestTestEngine({ function: fn, transformCtx })
    const steps = [...done].map(([id, data]) => ({ id, handler: () => data }))
    const { result, error } = await engine.execute({ events: [event], steps })
    const spent = failed && failures.get(failed.id) > retries
    if (!error || error.name === 'NonRetriableError' || spent || !failed) {
      return { result, error, attempts, values }
    }
  }
}

/** `fn`'s `onFailure`, as Inngest runs it: its own invocation with the failure event. */
function failureHandler(fn) {
  const handler = Object.create(fn)
  handler.createExecution = (opts) =>
    fn.createExecution.call(handler, { ...opts, partialOptions: { ...opts.partialOptions, handlerKind: 'failure' } })
  return handler
}

function failedEvent(fn, event, error) {
  return {
    id: randomUUID(),
    name: 'inngest/function.failed',
    data: { function_id: fn.id(), run_id: randomUUID(), error: errors.serializeError(error), event },
  }
}

/** The processes in the sandbox whose command line starts with `prefix`. */
async function processes(sandbox, prefix) {
  const r = await sandbox.process.executeCommand(
    `for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '^${prefix}' || true`,
  )
  return Number(r.result.trim())
}

test('every step fails once after its work and is retried: one sandbox, one clone, one dev server, a verified preview', { timeout: 300_000 }, async (t) => {
  assert.ok(REPO_URL && TOKEN, 'EXAMPLE_RETRY_REPO_URL and EXAMPLE_GIT_TOKEN are set')
  integrations.set('user-r', { provider: 'github', access_token: TOKEN })
  const before = (await daytona.listSandboxes()).length
  const event = { id: randomUUID(), name: 'github/clone-and-preview', data: { projectId: 'p-retry', repoUrl: REPO_URL, userId: 'user-r' } }
  const { result, error, attempts, values } = await runWithRetries(cloneAndPreviewRepository, event, { failOnce: STEP_IDS })
  t.after(async () => {
    await daytona.cleanup({ labels: { 'forge-project': 'p-retry' } })
  })
  assert.equal(error, undefined, `the run failed: ${error?.stack ?? error}`)
  assert.equal(result.success, true)

  // Every step ran twice (its first answer lost), and the retry gave the first run's result
  // for the steps whose work is not repeated.
  for (const id of STEP_IDS) assert.equal(attempts.get(id), 2, `${id} ran twice`)
  for (const id of ['create-sandbox', 'clone-repository', 'install-dependencies', 'start-preview-server']) {
    const [first, second] = values.get(id)
    assert.equal(second.copy.sandboxId, first.copy.sandboxId, `${id}: the same sandbox`)
  }
  for (const id of ['clone-repository', 'install-dependencies']) {
    const [first, second] = values.get(id)
    assert.equal(second.copy.elapsedMs, first.copy.elapsedMs, `${id}: the first run's result, its work not repeated`)
  }
  // Every step result survives JSON unchanged.
  for (const [id, runs] of values) {
    for (const r of runs) assert.deepEqual(r.copy, r.value, `${id}: the JSON copy equals the result`)
  }

  // One sandbox: the run's, the one every step used.
  const ours = await daytona.listSandboxes({ labels: { 'forge-project': 'p-retry' } })
  assert.deepEqual(ours.map((s) => s.id), [result.sandboxId])
  assert.equal((await daytona.listSandboxes()).length, before + 1)

  // One dev server, the one the result names, serving the repository's app.
  const sandbox = await daytona.getSandbox(result.sandboxId)
  assert.equal(await processes(sandbox, 'node server.js'), 1)
  const [, dev] = values.get('start-preview-server')
  const sessions = (await sandbox.process.listSessions()).map((s) => s.sessionId)
  assert.ok(sessions.includes(dev.copy.sessionId), 'the serving dev server is the one the result names')
  assert.ok(!sessions.includes(values.get('start-preview-server')[0].copy.sessionId), 'the first one is gone')
  const res = await fetch(result.previewUrl)
  assert.equal(res.status, 200)
  assert.ok((await res.text()).includes(EXPECT))
  assert.equal(projects.get('p-retry').status, 'deployed')
})

test('a run that fails for good: onFailure deletes its sandbox', { timeout: 120_000 }, async () => {
  integrations.set('user-f', { provider: 'github', access_token: TOKEN })
  const before = (await daytona.listSandboxes()).length
  const missing = REPO_URL.replace(/[^/]+$/, 'no-such-repo.git')
  const event = { id: randomUUID(), name: 'github/clone-and-preview', data: { projectId: 'p-fail', repoUrl: missing, userId: 'user-f' } }
  const { error, attempts } = await runWithRetries(cloneAndPreviewRepository, event)
  assert.equal(error?.name, 'NonRetriableError', String(error?.stack ?? error))
  assert.equal(attempts.get('clone-repository'), 1, 'a missing repository is not retried')
  const left = await daytona.listSandboxes({ labels: { 'forge-project': 'p-fail' } })
  assert.equal(left.length, 1, 'the failed run made a sandbox')

  const engine = new InngestTestEngine({ function: failureHandler(cloneAndPreviewRepository) })
  const cleaned = await engine.execute({ events: [failedEvent(cloneAndPreviewRepository, event, error)] })
  assert.equal(cleaned.error, undefined, String(cleaned.error?.stack ?? cleaned.error))
  assert.deepEqual(cleaned.result, { deleted: [left[0].id] })
  assert.deepEqual(await daytona.listSandboxes({ labels: { 'forge-project': 'p-fail' } }), [])
  assert.equal((await daytona.listSandboxes()).length, before)
  assert.equal(projects.get('p-fail').status, 'failed')
})

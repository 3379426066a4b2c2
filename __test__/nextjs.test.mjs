// The Next.js example (examples/nextjs) as a user gets it: copied to a temp folder, installed
// with `next` and this package's packed tarballs (not a workspace link), built with
// `next build`, started with `next start` on 127.0.0.1, and every route called: the route
// handler and the server action run the pipeline on the embedded backend against a git
// repository served here, and the preview URLs they return must answer.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { freePort, helloApp, installPacked, root, spawnAsync, waitForOk as waitFor } from '../scripts/pack.mjs'
import { createRepo, startGitHttp } from '../crates/testkit/js/forge-local.mjs'
import { tempDir } from './helpers.mjs'

let serverLog = ''
/** { status, body } of a JSON answer; a non-JSON answer fails with its text and the server's log. */
async function json(res) {
  const text = await res.text()
  try {
    return { status: res.status, body: JSON.parse(text) }
  } catch {
    throw new Error(`${res.url}: HTTP ${res.status}, not JSON: ${text.slice(0, 2000)}\n--- next start log ---\n${serverLog.slice(-6000)}`)
  }
}

test('examples/nextjs: next build (webpack and Turbopack) + next start, preview routes, server action, health, restart', { timeout: 600_000 }, async (t) => {
  const work = tempDir('nextjs')
  const dir = join(work, 'app')
  cpSync(join(root, 'examples', 'nextjs'), dir, { recursive: true, filter: (p) => !/node_modules|\.next/.test(p) })
  const token = `ghp_${Math.random().toString(36).slice(2)}${Date.now()}`
  const repos = join(work, 'repos')
  createRepo(repos, 'hello.git', 'main', helloApp('hello from next'))
  // Its own repository: a preview of hello.git restores node_modules from the embedded
  // backend's dependency cache and runs no install, so it would print no install output.
  createRepo(repos, 'streamed.git', 'main', helloApp('hello from next'))
  const git = await startGitHttp(repos, null, token)
  let server = null
  t.after(async () => {
    if (server && server.exitCode === null) {
      process.kill(-server.pid, 'SIGTERM')
      const exited = new Promise((r) => server.once('exit', r))
      const timer = setTimeout(() => process.kill(-server.pid, 'SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
    await git.close()
    rmSync(work, { recursive: true, force: true })
  })

  installPacked({ dir })
  const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', FORGE_BACKEND: 'local', FORGE_HOME: join(work, 'forge-home'), DAYTONA_API_KEY: '' }
  delete env.NODE_TEST_CONTEXT
  delete env.NODE_OPTIONS
  const next = join(dir, 'node_modules', 'next', 'dist', 'bin', 'next')

  // Both bundlers accept the addon with serverExternalPackages; the app is served from the
  // default (Turbopack) build, which runs last.
  const webpack = await spawnAsync(process.execPath, [next, 'build', '--webpack'], { cwd: dir, env, timeout: 300_000 })
  assert.equal(webpack.status, 0, `next build --webpack failed:\n${webpack.stdout}\n${webpack.stderr}`)
  const build = await spawnAsync(process.execPath, [next, 'build'], { cwd: dir, env, timeout: 300_000 })
  assert.equal(build.status, 0, `next build failed:\n${build.stdout}\n${build.stderr}`)
  assert.match(build.stdout, /Turbopack/i)

  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  server = spawn(process.execPath, [next, 'start', '-H', '127.0.0.1', '-p', String(port)], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  server.stdout.on('data', (d) => (serverLog += d))
  server.stderr.on('data', (d) => (serverLog += d))
  await waitFor(`${base}/`, 60_000)

  // Route handler: the whole pipeline, then the preview answers with the repository's app.
  const bad = await json(await fetch(`${base}/api/preview`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }))
  assert.equal(bad.status, 400)
  const created = await json(
    await fetch(`${base}/api/preview`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ repoUrl: git.url('hello.git'), token }),
      signal: AbortSignal.timeout(180_000),
    }),
  )
  assert.equal(created.status, 200, `POST /api/preview: ${JSON.stringify(created.body)}\n${serverLog}`)
  const { projectId, previewUrl } = created.body
  assert.equal(created.body.framework, 'node')
  assert.ok(!JSON.stringify(created.body).includes(token), 'no token in the answer')
  const page = await (await waitFor(previewUrl, 10_000)).text()
  assert.match(page, /hello from next/)

  // The same pipeline as server-sent events: progress and the install's output arrive before
  // the result, the dev server's output too, and the result is a verified preview.
  const streamed = await fetch(`${base}/api/preview/stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ repoUrl: git.url('streamed.git'), token }),
    signal: AbortSignal.timeout(180_000),
  })
  assert.equal(streamed.status, 200)
  assert.match(streamed.headers.get('content-type'), /^text\/event-stream/)
  const sse = await streamed.text()
  assert.ok(!sse.includes(token), 'no token in the stream')
  const events = sse
    .split('\n\n')
    .filter(Boolean)
    .map((block) => {
      const [event, data] = block.split('\n')
      assert.ok(event.startsWith('event: ') && data.startsWith('data: '), block)
      return { event: event.slice(7), data: JSON.parse(data.slice(6)) }
    })
  const last = events.at(-1)
  assert.equal(last.event, 'result', `${sse.slice(-2000)}\n${serverLog}`)
  assert.equal(events.filter((e) => e.event === 'result').length, 1)
  const install = events.filter((e) => e.event === 'log' && e.data.step === 'install' && e.data.line.trim())
  assert.ok(install.length > 0, `install output streamed:\n${sse}`)
  const installFinished = events.findIndex((e) => e.event === 'progress' && e.data.step === 'install' && e.data.status === 'finished')
  assert.ok(installFinished > events.indexOf(install.at(-1)), 'the install lines come before "install finished"')
  assert.ok(
    events.some((e) => e.event === 'log' && e.data.step === 'start' && /listening on/.test(e.data.line)),
    `the dev server's output streamed:\n${sse}`,
  )
  assert.deepEqual(
    events.filter((e) => e.event === 'progress' && e.data.status === 'finished').map((e) => e.data.step),
    ['create', 'clone', 'detect', 'install', 'start', 'verify'],
  )
  const streamedProject = last.data.projectId
  assert.match(await (await waitFor(last.data.previewUrl, 10_000)).text(), /hello from next/)

  // A wrong token: a typed failure of the clone step, and the token is not echoed.
  const denied = await json(
    await fetch(`${base}/api/preview`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ repoUrl: git.url('hello.git'), token: 'ghp_wrong_token_value' }),
      signal: AbortSignal.timeout(120_000),
    }),
  )
  assert.equal(denied.status, 422, JSON.stringify(denied.body))
  assert.equal(denied.body.error.step, 'clone')
  assert.ok(!JSON.stringify(denied.body).includes('ghp_wrong_token_value'))

  // The guide's Example 3: health, then restart, and the preview answers again.
  const health = await json(await fetch(`${base}/api/sandbox/health/${projectId}`))
  assert.equal(health.status, 200)
  assert.equal(health.body.isAlive, true, JSON.stringify(health.body))
  const unknown = await json(await fetch(`${base}/api/sandbox/health/no-such-project`))
  assert.equal(unknown.body.isAlive, false)
  const restarted = await json(await fetch(`${base}/api/sandbox/restart/${projectId}`, { method: 'POST', signal: AbortSignal.timeout(120_000) }))
  assert.equal(restarted.status, 200, `${JSON.stringify(restarted.body)}\n${serverLog}`)
  assert.equal(restarted.body.success, true)
  assert.equal(restarted.body.recreated, false)
  assert.match(await (await waitFor(restarted.body.sandboxUrl, 10_000)).text(), /hello from next/)
  const missing = await fetch(`${base}/api/sandbox/restart/no-such-project`, { method: 'POST' })
  assert.equal(missing.status, 404)

  // The server action, as a browser without JS submits the form: the page's action id, a
  // multipart POST, a redirect to the project, whose page links the verified preview.
  const home = await (await fetch(`${base}/`)).text()
  const actionField = /name="(\$ACTION_ID_[0-9a-f]+)"/.exec(home)?.[1]
  assert.ok(actionField, 'the form carries a server action id')
  const form = new FormData()
  form.set(actionField, '')
  form.set('repoUrl', git.url('hello.git'))
  form.set('token', token)
  const submitted = await fetch(`${base}/`, { method: 'POST', body: form, redirect: 'manual', signal: AbortSignal.timeout(180_000) })
  assert.ok([303, 307].includes(submitted.status), `server action answered ${submitted.status}\n${serverLog}`)
  const location = new URL(submitted.headers.get('location'), base)
  const actionProject = location.searchParams.get('project')
  assert.ok(actionProject && actionProject !== projectId)
  const projectPage = await (await fetch(location)).text()
  const actionPreview = /id="preview-url" href="([^"]+)"/.exec(projectPage)?.[1]
  assert.ok(actionPreview, 'the project page links the preview')
  // Where this machine has a browser (.ci/run installs Chromium) the preview was also checked
  // in it, and the project page shows what it saw as a PNG thumbnail beside the iframe.
  if (spawnSync('sh', ['-c', 'command -v chromium || command -v google-chrome']).status === 0) {
    assert.match(projectPage, /<img id="preview-screenshot"[^>]*src="data:image\/png;base64,iVBORw0KGgo/, 'the project page shows the screenshot')
  }
  assert.match(await (await waitFor(actionPreview, 10_000)).text(), /hello from next/)

  // Clean up every sandbox through the app.
  for (const id of [projectId, actionProject, streamedProject]) {
    const del = await json(await fetch(`${base}/api/sandbox/${id}`, { method: 'DELETE' }))
    assert.equal(del.body.deleted, true)
  }
  const gone = await json(await fetch(`${base}/api/sandbox/health/${projectId}`))
  assert.equal(gone.body.isAlive, false)
})

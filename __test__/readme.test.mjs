// The README as a new user pastes it: a fresh app from the current create-next-app (from the
// npm registry), every TypeScript / JavaScript block of the README written into it (a block
// whose first line is `// <path>` becomes that file, replacing what create-next-app made;
// any other block becomes a module of its own under readme-snippets/), this package installed
// from its packed tarballs, then:
//
//   - `tsc --noEmit` with the app's own tsconfig (`strict: true`): every block type-checks;
//   - `next build` with no DAYTONA_API_KEY (nor FORGE_BACKEND) in the environment;
//   - `next start`, and the README's route handler and server action each take a repository
//     served here by `git http-backend` to a verified preview on the embedded backend.
//
// create-next-app is pinned (the latest when this was written) so that a new release cannot
// change what this test means. `--empty` is its template without the demo page's Google
// fonts (next/font/google downloads them at build time: this machine reaches only the npm
// registry) and otherwise the same app: the same next.config.ts (`cacheComponents`), tsconfig
// and layout; `--no-tailwind --no-eslint` only install less (the README's blocks touch neither).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { freePort, helloApp, installPacked, root, spawnAsync, waitForOk as waitFor } from '../scripts/pack.mjs'
import { processesMentioning, until, tempDir } from './helpers.mjs'
import { createRepo, startGitHttp } from '../crates/testkit/js/forge-local.mjs'

const CREATE_NEXT_APP = 'create-next-app@16.4.3'
/** What the README's Inngest block imports, at the version examples/inngest pins. */
const EXTRA = ['inngest@4.24.0']

/**
 * The README's code blocks: `{ lang, path, code, line }`, `path` from a first line
 * `// <relative path>` (else a snippet name).
 */
export function readmeBlocks(text = readFileSync(join(root, 'README.md'), 'utf8')) {
  const blocks = []
  const re = /^```(\w+)[^\n]*\n([\s\S]*?)^```/gm
  let m
  let n = 0
  while ((m = re.exec(text))) {
    const [, lang, code] = m
    if (!['ts', 'tsx', 'js', 'mjs', 'jsx'].includes(lang)) continue
    const line = text.slice(0, m.index).split('\n').length
    const named = /^\/\/ ([\w@.[\]()/-]+\.(?:ts|tsx|js|mjs|jsx))\b/.exec(code)
    const path = named ? normalize(named[1]) : join('readme-snippets', `block-${++n}-line-${line}.${lang === 'js' ? 'mjs' : lang}`)
    assert.ok(!path.startsWith('..') && !path.startsWith('/'), `README line ${line}: ${path} leaves the app`)
    blocks.push({ lang, path, code, line })
  }
  return blocks
}

test('README: a fresh create-next-app with every README block pasted type-checks, builds without DAYTONA_API_KEY, and its route and server action preview a repository', { timeout: 1_200_000 }, async (t) => {
  const blocks = readmeBlocks()
  const paths = blocks.map((b) => b.path)
  for (const need of ['next.config.ts', join('lib', 'daytona.ts'), join('app', 'api', 'preview', 'route.ts')]) {
    assert.ok(paths.includes(need), `the README has a block for ${need} (has: ${paths.join(', ')})`)
  }
  const work = tempDir('readme')
  const dir = join(work, 'app')
  const token = `ghp_${Math.random().toString(36).slice(2)}${Date.now()}`
  const repos = join(work, 'repos')
  createRepo(repos, 'hello.git', 'main', helloApp('hello from the readme'))
  const git = await startGitHttp(repos, null, token)
  let server = null
  let serverLog = ''
  const forgeHome = join(work, 'forge-home')
  // The sandbox containers of the embedded backend in `next start` (their runtime's command
  // line names the sandbox's root under the home).
  const sandboxes = () => processesMentioning(`${join(forgeHome, 'sandboxes')}/`)
  /** SIGTERM, as Docker or a terminal stops the server; SIGKILL after 60 s. */
  const stopServer = async () => {
    if (!server || server.exitCode !== null || server.signalCode !== null) return
    const exited = new Promise((r) => server.once('exit', r))
    process.kill(-server.pid, 'SIGTERM')
    const timer = setTimeout(() => process.kill(-server.pid, 'SIGKILL'), 60_000)
    await exited
    clearTimeout(timer)
  }
  t.after(async () => {
    await stopServer()
    // A failed run leaves nothing behind either.
    for (const line of sandboxes()) {
      try { process.kill(Number(line.split(':')[0]), 'SIGKILL') } catch {}
    }
    await git.close()
    rmSync(work, { recursive: true, force: true })
  })

  const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', npm_config_yes: 'true' }
  for (const k of ['NODE_TEST_CONTEXT', 'NODE_OPTIONS', 'DAYTONA_API_KEY', 'DAYTONA_API_URL', 'FORGE_BACKEND', 'GITHUB_TOKEN']) delete env[k]
  const made = await spawnAsync('npm', ['exec', '--yes', '--', CREATE_NEXT_APP, 'app', '--yes', '--empty', '--no-tailwind', '--no-eslint', '--use-npm', '--skip-install', '--disable-git'], { cwd: work, env, timeout: 300_000 })
  assert.equal(made.status, 0, `${CREATE_NEXT_APP} failed:\n${made.stdout}\n${made.stderr}`)

  for (const b of blocks) {
    mkdirSync(dirname(join(dir, b.path)), { recursive: true })
    writeFileSync(join(dir, b.path), b.code)
  }
  // The snippets are modules of their own (top-level await, no shared names).
  writeFileSync(join(dir, 'readme-snippets', 'package.json'), '{ "type": "module" }\n')
  installPacked({ dir, extra: EXTRA })

  const next = join(dir, 'node_modules', 'next', 'dist', 'bin', 'next')
  // The route types create-next-app's own layout uses (`LayoutProps`), as `next build` would.
  const typegen = await spawnAsync(process.execPath, [next, 'typegen'], { cwd: dir, env, timeout: 300_000 })
  assert.equal(typegen.status, 0, `next typegen failed:\n${typegen.stdout}\n${typegen.stderr}`)
  const tsc = await spawnAsync(process.execPath, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', '.'], { cwd: dir, env, timeout: 300_000 })
  const where = (out) =>
    out.replace(/^([\w@.[\]()/-]+)\((\d+),(\d+)\)/gm, (all, file, l) => {
      const b = blocks.find((x) => x.path === normalize(file))
      return b ? `${all} [README.md line ${b.line + Number(l)}]` : all
    })
  assert.equal(tsc.status, 0, `tsc --strict on the README's blocks:\n${where(tsc.stdout)}\n${tsc.stderr}`)

  const build = await spawnAsync(process.execPath, [next, 'build'], { cwd: dir, env, timeout: 600_000 })
  assert.equal(build.status, 0, `next build (no DAYTONA_API_KEY) failed:\n${build.stdout}\n${build.stderr}`)

  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  // FORGE_STOP_SANDBOXES_ON_EXIT=1: the server's sandboxes go when it is stopped (checked last).
  const runEnv = { ...env, FORGE_BACKEND: 'local', FORGE_HOME: forgeHome, FORGE_STOP_SANDBOXES_ON_EXIT: '1', GITHUB_TOKEN: token }
  server = spawn(process.execPath, [next, 'start', '-H', '127.0.0.1', '-p', String(port)], { cwd: dir, env: runEnv, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  server.stdout.on('data', (d) => (serverLog += d))
  server.stderr.on('data', (d) => (serverLog += d))
  await waitFor(`${base}/`, 120_000)

  // The route handler: the whole pipeline; the preview answers with the repository's app.
  const res = await fetch(`${base}/api/preview`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ repoUrl: git.url('hello.git') }),
    signal: AbortSignal.timeout(300_000),
  })
  const text = await res.text()
  assert.equal(res.status, 200, `POST /api/preview: HTTP ${res.status} ${text}\n--- next start ---\n${serverLog.slice(-6000)}`)
  const body = JSON.parse(text)
  assert.ok(!text.includes(token), 'no token in the answer')
  assert.match(await (await waitFor(body.previewUrl, 30_000)).text(), /hello from the readme/)

  // A repository that does not exist: the README's error handling answers with its code.
  const missing = await fetch(`${base}/api/preview`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ repoUrl: git.url('no-such.git') }),
    signal: AbortSignal.timeout(300_000),
  })
  const missingText = await missing.text()
  assert.equal(missing.status, 502, missingText)
  assert.equal(JSON.parse(missingText).step, 'clone', missingText)

  // The server action, as a browser without JS submits the README's form: a redirect to the
  // verified preview.
  const formPage = paths.find((p) => /^app\/.*page\.tsx$/.test(p))
  assert.ok(formPage, 'the README has a page with the server action form')
  const pageUrl = `${base}/${dirname(formPage).replace(/^app\/?/, '')}`
  const html = await (await waitFor(pageUrl, 30_000)).text()
  const actionField = /name="(\$ACTION_ID_[0-9a-f]+)"/.exec(html)?.[1]
  assert.ok(actionField, `the form carries a server action id:\n${html.slice(0, 2000)}`)
  const form = new FormData()
  form.set(actionField, '')
  form.set('repoUrl', git.url('hello.git'))
  const submitted = await fetch(pageUrl, { method: 'POST', body: form, redirect: 'manual', signal: AbortSignal.timeout(300_000) })
  assert.ok([303, 307].includes(submitted.status), `server action answered ${submitted.status}\n${serverLog.slice(-6000)}`)
  const location = submitted.headers.get('location')
  assert.notEqual(location, body.previewUrl, 'a second sandbox, a second preview')
  assert.match(await (await waitFor(new URL(location, base).href, 30_000)).text(), /hello from the readme/)

  // Stopped with SIGTERM, the server takes its sandboxes down with it (it was started with
  // FORGE_STOP_SANDBOXES_ON_EXIT=1): no container of its home is left running.
  assert.ok(sandboxes().length > 0, 'the previews run in sandbox containers while the server runs')
  await stopServer()
  assert.equal(server.signalCode, null, `the server exited by itself on SIGTERM, not by the SIGKILL 60 s later\n${serverLog.slice(-3000)}`)
  await until(() => sandboxes().length === 0, t.signal)
})

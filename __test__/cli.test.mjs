// The `forge` bin of the npm package (bin/forge.js): the same Rust command line as the cargo
// binary, run through the addon's `runCli`. detect and list/rm answer in the one --json shape,
// Ctrl-C during an install (a repository cloned from a real `git http-backend` with a token
// from GITHUB_TOKEN) kills the install, deletes the sandbox and exits 130, and the packed
// package carries the bin.
import test from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { addon, processesMentioning, until, tempDir } from './helpers.mjs'
import { createRepo, reachableFromSandboxes, startForgeLocal, startGitHttp } from '../crates/testkit/js/forge-local.mjs'
import { installPacked, packCached } from '../scripts/pack.mjs'

const BIN = join(import.meta.dirname, '..', 'bin', 'forge.js')
const TOKEN = 'ghp_Cli0Bin0Token0123456789'
const MARKER = `forge-cli-bin-${process.pid}-${Date.now()}`

let backend
let git
const temps = []
const temp = (tag) => {
  const d = tempDir(`cli-${tag}`)
  temps.push(d)
  return d
}

test.before(async () => {
  const repos = temp('repos')
  // The install runs the package's own `install` script, which never ends.
  createRepo(repos, 'blocks.git', 'main', {
    'package.json': JSON.stringify({ name: 'blocks', private: true, scripts: { install: `node wait-forever.js ${MARKER}`, dev: 'node server.js' } }),
    'wait-forever.js': 'setInterval(() => {}, 1000)\n',
    'server.js': "require('http').createServer((q, s) => s.end('never')).listen(process.env.PORT || 3000)\n",
  })
  git = await startGitHttp(repos, null, TOKEN)
  // Before the backend starts: its sandboxes may reach the git server's port only.
  reachableFromSandboxes(new URL(git.base).port)
  backend = await startForgeLocal()
})
test.after(async () => {
  await backend?.stop()
  await git?.close()
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

/** The environment of a `forge` run: pointed at the test's backend (or a fresh embedded home). */
function envFor({ remote = true, extra = {} } = {}) {
  const env = { ...process.env, FORGE_HOME: temp('home') }
  delete env.DAYTONA_API_KEY
  delete env.DAYTONA_API_URL
  delete env.GITHUB_TOKEN
  if (remote) Object.assign(env, { DAYTONA_API_URL: backend.apiUrl, DAYTONA_API_KEY: backend.apiKey })
  return Object.assign(env, extra)
}

/** Starts `node bin/forge.js ...args` (or `cmd` instead of the bin, in `cwd`). */
function start(args, env, cmd = [process.execPath, BIN], cwd = undefined) {
  const child = spawn(cmd[0], [...cmd.slice(1), ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const done = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })))
  return { child, done }
}

const forge = (args, env = envFor()) => start(args, env).done
const lastJson = (r) => {
  const line = r.stdout.trim().split('\n').at(-1)
  try {
    return JSON.parse(line)
  } catch {
    throw new Error(`no JSON line: ${JSON.stringify(r)}`)
  }
}

test('detect answers through the addon in the one --json shape', async () => {
  const dir = temp('app')
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'bin-detect', private: true, dependencies: { vite: '^7.0.0' }, scripts: { dev: 'vite' } }))
  writeFileSync(join(dir, 'pnpm-lock.yaml'), "lockfileVersion: '9.0'\n")
  let r = await forge(['detect', dir, '--json'], envFor({ remote: false }))
  assert.equal(r.code, 0, r.stderr)
  const v = lastJson(r)
  assert.equal(v.ok, true)
  assert.equal(v.framework.id, 'vite')
  assert.equal(v.packageManager.name, 'pnpm')
  // The same answer as the library's own detectFramework.
  const lib = await addon().detectFramework(dir)
  assert.equal(v.devCommand, lib.devCommand)

  r = await forge(['detect', join(dir, 'missing'), '--json'], envFor({ remote: false }))
  assert.equal(r.code, 1)
  assert.deepEqual(Object.keys(lastJson(r)).sort(), ['error', 'ok'])
  assert.equal(lastJson(r).error.code, 'DETECT_NOT_FOUND')

  r = await forge(['detect', '--no-such-flag', '--json'], envFor({ remote: false }))
  assert.equal(r.code, 2)
  assert.equal(lastJson(r).error.code, 'DAYTONA_INVALID_ARGUMENT')
})

test('list and rm see the sandboxes of the backend', async () => {
  const { Daytona } = addon()
  const daytona = new Daytona({ apiUrl: backend.apiUrl, apiKey: backend.apiKey })
  const sandbox = await daytona.create({ labels: { made: 'by-cli-test' } })
  let v = lastJson(await forge(['list', '--json']))
  assert.equal(v.ok, true)
  const listed = v.sandboxes.find((s) => s.id === sandbox.id)
  assert.ok(listed, JSON.stringify(v))
  assert.equal(listed.labels.made, 'by-cli-test')
  assert.equal(listed.state, 'started')

  v = lastJson(await forge(['rm', sandbox.id, '--json']))
  assert.deepEqual(v, { ok: true, deleted: [sandbox.id] })
  v = lastJson(await forge(['list', '--json']))
  assert.equal(v.sandboxes.find((s) => s.id === sandbox.id), undefined)

  const r = await forge(['rm', sandbox.id, '--json'])
  assert.equal(r.code, 1)
  assert.equal(lastJson(r).error.code, 'DAYTONA_NOT_FOUND')
})

test('Ctrl-C during the install kills it, deletes the sandbox and exits 130', { timeout: 300_000 }, async (t) => {
  const env = envFor({ extra: { GITHUB_TOKEN: TOKEN } })
  const before = lastJson(await forge(['list', '--json'], env)).sandboxes.length
  const run = start(['preview', git.url('blocks.git'), '--no-wait'], env)
  let ended = null
  run.done.then((r) => (ended = r))
  await until(() => ended || processesMentioning(MARKER).length > 0, t.signal)
  assert.equal(ended, null, `forge ended before the install ran: ${JSON.stringify(ended)}`)
  assert.equal(lastJson(await forge(['list', '--json'], env)).sandboxes.length, before + 1)

  run.child.kill('SIGINT')
  const r = await run.done
  assert.equal(r.code, 130, r.stderr)
  assert.match(r.stderr, /interrupted during install; sandbox \S+ deleted/)
  assert.doesNotMatch(r.stderr + r.stdout, new RegExp(TOKEN))
  assert.deepEqual(processesMentioning(MARKER), [])
  assert.equal(lastJson(await forge(['list', '--json'], env)).sandboxes.length, before)
})

test('the packed package carries the bin: npx @smartapi-forge/daytona runs it', { timeout: 300_000 }, async () => {
  const packed = packCached()
  assert.ok(packed.main.files.includes('bin/forge.js'), packed.main.files.join(', '))
  const project = installPacked({ name: 'forge-cli-bin-' })
  temps.push(project)
  const pkg = JSON.parse(readFileSync(join(project, 'node_modules', '@smartapi-forge', 'daytona', 'package.json'), 'utf8'))
  assert.deepEqual(pkg.bin, { forge: 'bin/forge.js' })
  writeFileSync(join(project, 'server.js'), '')
  const npx = ['npm', 'exec', '--offline', '--no', '--', '@smartapi-forge/daytona']
  const r = await start(['detect', '.', '--json'], envFor({ remote: false }), npx, project).done
  // `npm exec` runs in the project: its own package.json (no framework, npm) is what it sees.
  assert.equal(r.code, 0, r.stderr)
  const v = lastJson(r)
  assert.equal(v.ok, true)
  assert.equal(v.packageManager.name, 'npm')
})

// The Inngest example (examples/inngest) as a user gets it: copied to a temp folder, installed
// with inngest, @inngest/test and this package's packed tarballs (not a workspace link), and its
// own test run there (the whole function under @inngest/test, every step result JSON
// round-tripped) on the embedded backend, against a git repository served here over HTTP with
// token auth.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { installPacked, root } from '../scripts/pack.mjs'
import { createRepo, startGitHttp } from '../crates/testkit/js/forge-local.mjs'

export const APP_FILES = {
  'package.json': JSON.stringify({ name: 'hello-preview', version: '1.0.0', private: true, scripts: { dev: 'node server.js' } }, null, 2),
  'server.js': `const http = require('node:http')
const port = Number(process.env.PORT || 3000)
http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' })
  res.end('<!doctype html><title>hello</title><h1>hello from the cloned repo</h1>')
}).listen(port, process.env.HOST || '0.0.0.0', () => console.log('listening on ' + port))
`,
}

/** Runs a command to its end without blocking the event loop: { status, stdout, stderr }. */
export function run(cmd, args, { timeout, ...opts }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout)
    child.on('error', reject)
    child.on('close', (status, signal) => {
      clearTimeout(timer)
      resolve({ status, signal, stdout, stderr })
    })
  })
}

test('examples/inngest: the guide Example 2 under @inngest/test on the embedded backend', { timeout: 420_000 }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'forge-inngest-'))
  const dir = join(work, 'app')
  cpSync(join(root, 'examples', 'inngest'), dir, { recursive: true, filter: (p) => !p.includes('node_modules') })
  const token = `ghp_${Math.random().toString(36).slice(2)}${Date.now()}`
  const repos = join(work, 'repos')
  createRepo(repos, 'hello.git', 'main', APP_FILES)
  const git = await startGitHttp(repos, null, token)
  t.after(async () => {
    await git.close()
    rmSync(work, { recursive: true, force: true })
  })

  installPacked({ dir })

  const env = { ...process.env }
  delete env.NODE_TEST_CONTEXT // we are inside node --test; the example's run is its own
  // Asynchronously: the git server above runs in this process and must keep serving.
  const r = await run(process.execPath, ['--test', '--test-reporter=spec', 'test/clone-and-preview.test.js'], {
    cwd: dir,
    timeout: 300_000,
    env: {
      ...env,
      FORGE_BACKEND: 'local',
      FORGE_HOME: join(work, 'forge-home'),
      DAYTONA_API_KEY: '',
      EXAMPLE_REPO_URL: git.url('hello.git'),
      EXAMPLE_GIT_TOKEN: token,
      EXAMPLE_EXPECT_BODY: 'hello from the cloned repo',
    },
  })
  const output = `${r.stdout}\n${r.stderr}`
  assert.equal(r.status, 0, `the example's test failed:\n${output}`)
  assert.match(output, /pass 2/)
  assert.match(output, /fail 0/)
})

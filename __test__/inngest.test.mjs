// The Inngest example (examples/inngest) as a user gets it: copied to a temp folder, installed
// with inngest, @inngest/test and this package's packed tarballs (not a workspace link), and its
// own tests run there (the whole function under @inngest/test, every step result JSON
// round-tripped; every step failing once after its work and retried; a failed run's
// onFailure) on the embedded backend, against git repositories served here over HTTP with
// token auth.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { helloApp, installPacked, root, spawnAsync } from '../scripts/pack.mjs'
import { createRepo, startGitHttp } from '../crates/testkit/js/forge-local.mjs'
import { tempDir } from './helpers.mjs'

test('examples/inngest: the guide Example 2 under @inngest/test on the embedded backend', { timeout: 420_000 }, async (t) => {
  const work = tempDir('inngest')
  const dir = join(work, 'app')
  cpSync(join(root, 'examples', 'inngest'), dir, { recursive: true, filter: (p) => !p.includes('node_modules') })
  const token = `ghp_${Math.random().toString(36).slice(2)}${Date.now()}`
  const repos = join(work, 'repos')
  createRepo(repos, 'hello.git', 'main', helloApp('hello from the cloned repo'))
  createRepo(repos, 'retry.git', 'main', helloApp('hello from the cloned repo'))
  const git = await startGitHttp(repos, null, token)
  t.after(async () => {
    await git.close()
    rmSync(work, { recursive: true, force: true })
  })

  installPacked({ dir })

  const env = { ...process.env }
  delete env.NODE_TEST_CONTEXT // we are inside node --test; the example's run is its own
  // Asynchronously: the git server above runs in this process and must keep serving.
  // One file at a time: each process starts its own embedded backend on FORGE_HOME.
  const files = ['test/clone-and-preview.test.js', 'test/retries.test.js']
  const r = await spawnAsync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
    cwd: dir,
    timeout: 300_000,
    env: {
      ...env,
      FORGE_BACKEND: 'local',
      FORGE_HOME: join(work, 'forge-home'),
      DAYTONA_API_KEY: '',
      EXAMPLE_REPO_URL: git.url('hello.git'),
      EXAMPLE_RETRY_REPO_URL: git.url('retry.git'),
      EXAMPLE_GIT_TOKEN: token,
      EXAMPLE_EXPECT_BODY: 'hello from the cloned repo',
    },
  })
  const output = `${r.stdout}\n${r.stderr}`
  assert.equal(r.status, 0, `the example's test failed:\n${output}`)
  assert.match(output, /pass 5/)
  assert.match(output, /fail 0/)
  // The retried run cloned once: one ref discovery of its repository (a second clone, or a
  // retried clone that fetched again, would make another).
  const discoveries = git.requests.filter((q) => q === 'GET /retry.git/info/refs')
  assert.equal(discoveries.length, 1, git.requests.join('\n'))
})

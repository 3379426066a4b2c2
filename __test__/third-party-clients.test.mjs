// Third-party clients from npm that build on the Daytona API, unchanged, against `forge local`:
// @mastra/daytona, @langchain/daytona (deepagents' backend) and @computesdk/daytona (each with
// its own, older, @daytonaio/sdk). Each runs its documented calls: create, a command, a file
// written by absolute path and read back by a command, list, delete. The clients are installed
// (pinned) into a folder this test makes and reuses.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startForgeLocal } from '../crates/testkit/js/forge-local.mjs'

const PACKAGES = {
  '@mastra/daytona': '0.4.1',
  '@mastra/core': '1.71.0',
  '@langchain/daytona': '0.1.2',
  deepagents: '1.14.1',
  '@langchain/core': '1.4.0',
  '@langchain/langgraph': '1.7.3',
  '@langchain/langgraph-checkpoint': '1.2.2',
  '@langchain/langgraph-sdk': '1.15.0',
  langchain: '1.5.14',
  langsmith: '0.9.0',
  '@computesdk/daytona': '1.7.32',
}
const dir = join(tmpdir(), 'forge-third-party-clients-1')
let backend

before(async () => {
  if (!existsSync(join(dir, '.installed'))) {
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'clients', private: true, type: 'module', dependencies: PACKAGES }))
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: dir, stdio: 'inherit', timeout: 900_000 })
    writeFileSync(join(dir, '.installed'), '')
  }
  copyFileSync(new URL('./third-party/clients.mjs', import.meta.url), join(dir, 'clients.mjs'))
  backend = await startForgeLocal()
})

after(async () => {
  await backend?.stop()
})

test('@mastra/daytona, @langchain/daytona and @computesdk/daytona run their documented calls', { timeout: 900_000 }, async () => {
  const r = spawnSync(process.execPath, ['clients.mjs'], {
    cwd: dir,
    env: { ...process.env, DAYTONA_API_KEY: backend.apiKey, DAYTONA_API_URL: backend.apiUrl },
    encoding: 'utf8',
    timeout: 600_000,
  })
  assert.equal(r.status, 0, r.stderr)
  const seen = JSON.parse(r.stdout.trim().split('\n').pop())
  assert.deepEqual(seen.mastra, { ...seen.mastra, cmd: 'hi\n/home/daytona\n', exit: 0, write: 0, read: 'from mastra\n' }, JSON.stringify(seen.mastra))
  assert.deepEqual(
    seen.langchain,
    { ...seen.langchain, cmd: 'hello\ndaytona\n', exit: 0, uploaded: [null], read: 'from langchain\n', downloaded: 'from langchain\n' },
    JSON.stringify(seen.langchain),
  )
  assert.deepEqual(seen.computesdk, { ...seen.computesdk, cmd: 'computesdk\n', exit: 0, read: 'from computesdk\n' }, JSON.stringify(seen.computesdk))
  assert.ok(seen.computesdk.listed >= 1)
  // Every sandbox they made is gone.
  const list = await (await fetch(`${backend.apiUrl}/sandbox`, { headers: { authorization: `Bearer ${backend.apiKey}` } })).json()
  assert.deepEqual(list.items.map((s) => s.id), [], JSON.stringify(list.items.map((s) => [s.id, s.state])))
})

// The official Python SDK (`daytona==0.218.0` from PyPI, in a venv this test makes and
// reuses) against `forge local`, unchanged: create, exec, files, sessions, snapshots, volumes
// and delete (__test__/python/sdk_roundtrip.py).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startForgeLocal } from '../crates/testkit/js/forge-local.mjs'

const VERSION = '0.218.0'
const venv = join(tmpdir(), `forge-python-daytona-${VERSION}`)
const python = join(venv, 'bin', 'python')
let backend

before(async () => {
  if (!existsSync(join(venv, '.installed'))) {
    execFileSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' })
    execFileSync(join(venv, 'bin', 'pip'), ['install', '-q', `daytona==${VERSION}`], { stdio: 'inherit', timeout: 600_000 })
    execFileSync('touch', [join(venv, '.installed')])
  }
  backend = await startForgeLocal()
})

after(async () => {
  await backend?.stop()
})

test('the official Python SDK: create, exec, files, sessions, snapshots, volumes, delete', { timeout: 600_000 }, () => {
  const r = spawnSync(python, [new URL('./python/sdk_roundtrip.py', import.meta.url).pathname], {
    env: { ...process.env, FORGE_KEY: backend.apiKey, FORGE_URL: backend.apiUrl },
    encoding: 'utf8',
    timeout: 300_000,
  })
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`)
  const seen = JSON.parse(r.stdout.trim().split('\n').pop())
  assert.equal(seen.state, 'started')
  assert.equal(seen.cpu, 1, 'integers where the API has integers (the SDK models are StrictInt)')
  assert.deepEqual(seen.exec, [0, '/home/daytona\ndaytona\n1 2 3\n'])
  assert.equal(seen.cat, 'hello from python\n')
  assert.equal(seen.download, 'hello from python\n')
  assert.ok(seen.listed.includes('p.txt'), seen.listed)
  assert.deepEqual(seen.session, [0, 0, '1\n/tmp\n'])
  assert.equal(seen.snapshot, 'active')
  assert.equal(seen.from_snapshot, 'py-snap')
  assert.equal(seen.built, 'hi\n')
  assert.match(seen.local_files, /not supported.*obstore/)
  assert.equal(seen.volume, 'ready')
  assert.equal(seen.volume_file, 'shared\n')
  assert.equal(seen.deleted, true)
})

// Typings against the integration guide: every ```typescript sample of the guide, with only the
// import changed to '@smartapi-forge/daytona' (and the commented patches of
// scripts/guide-samples.mjs), type-checks under `tsc --strict` against our index.d.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GUIDE, OUT, PATCHES, generate, root } from '../scripts/guide-samples.mjs'

// The guide itself lives beside the clone (../shared/seed), not in it: without it only this
// freshness check is skipped; the type checks below run on the checked-in samples.
const guideMissing = existsSync(GUIDE) ? false : `the integration guide is not beside the clone (${GUIDE}); set FORGE_GUIDE to check the samples' freshness`

test('the checked-in samples are what the script generates from the guide', { skip: guideMissing }, () => {
  const files = generate(readFileSync(GUIDE, 'utf8'))
  const onDisk = readdirSync(OUT).filter((f) => /^\d\d-.*\.ts$/.test(f)).sort()
  assert.deepEqual(onDisk, Object.keys(files).sort())
  for (const [name, text] of Object.entries(files)) {
    assert.equal(readFileSync(join(OUT, name), 'utf8'), text, `${name} is stale: run node scripts/guide-samples.mjs`)
  }
  assert.ok(onDisk.length >= 50, `all the guide's samples (${onDisk.length})`)
  // Every patch is explained and classified.
  for (const [name, patches] of Object.entries(PATCHES)) {
    for (const p of patches) assert.ok(['api', 'guide', 'e2b'].includes(p.kind) && p.why.length > 10, name)
  }
})

test('tsc --strict --noEmit over every guide sample reports no error', { timeout: 180_000 }, () => {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  try {
    execFileSync(process.execPath, [tsc, '-p', OUT, '--strict', '--noEmit'], { cwd: root, encoding: 'utf8', timeout: 170_000 })
  } catch (e) {
    assert.fail(`tsc reported errors:\n${e.stdout}${e.stderr}`)
  }
})

test('the check is not vacuous: misuses of our API fail it', { timeout: 180_000 }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'guide-misuse-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const tsconfig = JSON.parse(readFileSync(join(OUT, 'tsconfig.json'), 'utf8').replace(/^\s*\/\/.*$/gm, ''))
  tsconfig.compilerOptions.paths = { '@smartapi-forge/daytona': [join(root, 'index.d.ts')] }
  tsconfig.compilerOptions.typeRoots = [join(root, 'node_modules', '@types')]
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(tsconfig))
  writeFileSync(
    join(dir, 'misuse.ts'),
    `import { Daytona } from '@smartapi-forge/daytona'
const daytona = new Daytona({ apiKey: 'k' })
const sandbox = await daytona.create({ workspaceClass: 'medium', public: 'yes' })
await sandbox.process.executeCommand('ls', '.', { A: 1 }, 5)
const r = await sandbox.process.exec('ls')
r.result.trim()
await sandbox.git.clone('https://example.com/r.git')
export {}
`,
  )
  let out = ''
  try {
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8', timeout: 170_000 })
  } catch (e) {
    out = e.stdout
  }
  // public: string, env value number, ExecResult has no `result`, clone needs a path.
  assert.equal((out.match(/error TS/g) ?? []).length, 4, out)
})

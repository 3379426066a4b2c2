// Real project generators from npm, run non-interactively without installing dependencies
// into a temporary folder; the detector must give the right answer for what they wrote.
// A generator that cannot be had (no registry, incompatible Node) is skipped with a message.
// Set FORGE_SKIP_GENERATORS=1 to skip them all (they need the npm registry).
import test from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { addon, tempDir } from './helpers.mjs'
import { GENERATORS, generate } from '../bench/detect/generators.mjs'

const { detectFramework } = addon()
const skipAll = process.env.FORGE_SKIP_GENERATORS === '1'
const work = tempDir('generators')
process.on('exit', () => rmSync(work, { recursive: true, force: true }))

for (const g of GENERATORS) {
  test(`generator: ${g.name}`, { timeout: 300_000 }, async (t) => {
    if (skipAll) return t.skip('FORGE_SKIP_GENERATORS=1')
    const { dir, skip } = generate(g, work)
    if (skip) {
      console.log(`# skipped: ${skip}`)
      return t.skip(skip)
    }
    const r = await detectFramework(dir)
    const e = g.expect
    assert.equal(r.framework?.id, e.framework, JSON.stringify(r, null, 1))
    assert.equal(r.port, e.port)
    assert.equal(r.packageManager.name, 'npm')
    if (e.devCommand) assert.equal(r.devCommand, e.devCommand)
    if (e.devCommandStarts) assert.ok(r.devCommand.startsWith(e.devCommandStarts), r.devCommand)
    for (const [k, v] of Object.entries(e.env ?? {})) assert.equal(r.env[k], v)
    assert.deepEqual(r.warnings, [])
  })
}

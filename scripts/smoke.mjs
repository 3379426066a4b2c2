#!/usr/bin/env node
// A smoke run of one built binary on the Node that runs this script, e.g. the aarch64 Linux
// build under qemu-user with an arm64 Node:
//
//   qemu-aarch64-static /path/to/arm64/node scripts/smoke.mjs npm/linux-arm64-gnu
//
// It stages the package's entry files and the binary of <dir> in a temporary folder (so the
// entry loads that binary and no other), then: loads it (reporting which file), detects a
// Next.js app from an in-memory file map and from a folder on disk, and, when DAYTONA_API_URL
// and DAYTONA_API_KEY are set (a `forge local` running natively, say), creates a sandbox
// there, runs a command in it and deletes it. Prints one JSON line; exits 1 on any failure.
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const from = resolve(process.argv[2] ?? '.')
const stage = mkdtempSync(join(tmpdir(), 'forge-smoke-'))
const result = { node: process.version, platform: process.platform, arch: process.arch }
try {
  for (const f of ['index.js', 'binding.js', 'loader-error.js', 'package.json']) copyFileSync(join(root, f), join(stage, f))
  const binary = readdirSync(from).find((f) => f.endsWith('.node'))
  if (!binary) throw new Error(`no .node file in ${from}`)
  copyFileSync(join(from, binary), join(stage, binary))
  result.binary = binary

  const binding = createRequire(join(stage, 'index.js'))('./index.js')
  result.loaded = typeof binding.Daytona === 'function'

  const files = {
    'package.json': JSON.stringify({ scripts: { dev: 'next dev' }, dependencies: { next: '15.0.0', react: '19.0.0' } }),
    'app/page.tsx': 'export default function Page() { return null }',
  }
  const fromMap = binding.detectFrameworkSync(files)
  const folder = join(stage, 'app')
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(dirname(join(folder, p)), { recursive: true })
    writeFileSync(join(folder, p), content)
  }
  const fromFolder = await binding.detectFramework(folder)
  result.detection = { map: fromMap.framework?.id, folder: fromFolder.framework?.id, devCommand: fromFolder.devCommand }
  if (result.detection.map !== 'nextjs' || result.detection.folder !== 'nextjs') throw new Error(`detection said ${JSON.stringify(result.detection)}`)

  if (process.env.DAYTONA_API_URL && process.env.DAYTONA_API_KEY) {
    const daytona = new binding.Daytona({ apiUrl: process.env.DAYTONA_API_URL, apiKey: process.env.DAYTONA_API_KEY })
    const sandbox = await daytona.create()
    try {
      const r = await sandbox.process.executeCommand('echo hello from $(uname -m)')
      result.sandbox = { id: sandbox.id, exitCode: r.exitCode, result: r.result.trim() }
      if (r.exitCode !== 0 || !r.result.includes('hello from')) throw new Error(`command gave ${JSON.stringify(r)}`)
    } finally {
      await sandbox.delete()
    }
  }
  result.ok = true
} catch (e) {
  result.ok = false
  result.error = e && e.message ? e.message.split('\n').slice(0, 3).join(' | ') : String(e)
} finally {
  rmSync(stage, { recursive: true, force: true })
}
console.log(JSON.stringify(result))
process.exit(result.ok ? 0 : 1)

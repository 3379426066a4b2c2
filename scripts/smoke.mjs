#!/usr/bin/env node
// A smoke run of one built binary on the Node that runs this script, e.g. the aarch64 Linux
// build under qemu-user with an arm64 Node:
//
//   qemu-aarch64-static /path/to/arm64/node scripts/smoke.mjs npm/linux-arm64-gnu
//
// It stages the package's entry files and the binary of <dir> in a temporary folder (so the
// entry loads that binary and no other), then: loads it (reporting which file), detects a
// Next.js app from an in-memory file map and from a folder on disk, checks off Linux that
// `backend: 'local'` is the typed DAYTONA_LOCAL_UNSUPPORTED, and, when DAYTONA_API_URL
// and DAYTONA_API_KEY are set (a `forge local` running natively, say), creates a sandbox
// there, runs a command in it and deletes it. Prints one JSON line (and writes it to
// `--out <file>` if given); exits 1 on any failure.
//
// With `--runner <command>` this Node is only the launcher: it starts a native `forge local`
// on 127.0.0.1 (crates/testkit/js/forge-local.mjs; FORGE_BIN picks the binary), then runs
// `<command> scripts/smoke.mjs --out <file> <dir>` from the repository root, with relative
// paths (so a Windows Node under Wine, whose `/` is `Z:\`, finds them), pointed at that
// backend, and prints what it wrote. The file, not stdout: the Windows node.exe under Wine
// cannot open a pipe as its stdout (EBADF at the first console.log). The Windows check:
//
//   WINEDEBUG=-all node scripts/smoke.mjs --runner "wine /path/to/node.exe" npm/win32-x64-gnu
//
// (scripts/smoke-windows.sh sets that up: Wine, a Windows node.exe from npm, the build.)
import { spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2)
/** Removes `--name <value>` from args and returns the value. */
const option = (name) => {
  const i = args.indexOf(name)
  return i === -1 ? undefined : args.splice(i, 2)[1]
}
const out = option('--out')
const runner = option('--runner')
if (runner) process.exit(await launch(runner.split(' ').filter(Boolean), args[0] ?? '.'))
const from = resolve(args[0] ?? '.')
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

  // Off Linux there is no embedded backend: asking for it is the typed refusal.
  if (process.platform !== 'linux') {
    let code
    try {
      const local = new binding.Daytona({ backend: 'local' })
      await local.create()
    } catch (e) {
      code = e.code
    }
    result.localBackend = code
    if (code !== 'DAYTONA_LOCAL_UNSUPPORTED') throw new Error(`backend: 'local' gave ${code ?? 'no error'}, not DAYTONA_LOCAL_UNSUPPORTED`)
  }

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
  try {
    rmSync(stage, { recursive: true, force: true })
  } catch {
    // Windows refuses to delete a DLL its process has loaded (EPERM): the staged binary stays
    // in the temporary folder.
  }
}
console.log(JSON.stringify(result))
if (out) writeFileSync(out, `${JSON.stringify(result)}\n`)
process.exit(result.ok ? 0 : 1)

/** The launcher (`--runner`): a native `forge local`, the smoke under `command`; its exit code. */
async function launch(command, dir) {
  const { startForgeLocal } = await import('../crates/testkit/js/forge-local.mjs')
  process.env.FORGE_STOP_SANDBOXES_ON_EXIT = '1'
  const forge = await startForgeLocal()
  const file = join('target', `smoke-${process.pid}.json`)
  mkdirSync(join(root, 'target'), { recursive: true })
  try {
    const [cmd, ...rest] = command
    const r = spawnSync(cmd, [...rest, join('scripts', 'smoke.mjs'), '--out', file, relative(root, resolve(dir))], {
      cwd: root,
      env: { ...process.env, DAYTONA_API_URL: forge.apiUrl, DAYTONA_API_KEY: forge.apiKey },
      stdio: ['ignore', 'ignore', 'inherit'],
      // Bounded: a first Wine start sets up its prefix (a minute or two on a busy machine).
      timeout: 10 * 60_000,
    })
    if (!existsSync(join(root, file))) {
      console.log(JSON.stringify({ ok: false, error: `${command.join(' ')} wrote no result (exit ${r.status}, signal ${r.signal}${r.error ? `, ${r.error.message}` : ''})` }))
      return 1
    }
    const line = readFileSync(join(root, file), 'utf8').trim()
    console.log(line)
    return JSON.parse(line).ok ? 0 : 1
  } finally {
    rmSync(join(root, file), { force: true })
    await forge.stop()
  }
}

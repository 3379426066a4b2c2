#!/usr/bin/env node
// Install size and cold load: this package (its packed tarballs, as users install it) and the
// official @daytonaio/sdk, each installed into its own fresh temp project in the same run.
// Measures the installed node_modules (bytes, bytes on disk, files, packages) and the cold
// `require` time of each (a fresh `node -e` process per sample, median of N) with the RSS
// after load, and prints the ratios. Goal: ≥ 10× smaller installed and ≥ 10× faster to load.
//
//   node bench/install.mjs [--runs 11] [--node path/to/daytona.linux-x64-gnu.node] [--json]
//
// `npm run bench` builds the release addon first; run alone, this packs whatever
// `napi build --platform` last wrote (it says so when that is a debug build).
// `npm run bench` runs it after bench/run.mjs; it writes its own README section.
import { execFileSync } from 'node:child_process'
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { installPacked, packCached } from '../scripts/pack.mjs'

export const OFFICIAL = '@daytonaio/sdk@0.218.0'

/** Sizes of a node_modules tree: apparent bytes, bytes on disk (blocks), files, packages. */
export function treeSize(dir) {
  const total = { bytes: 0, diskBytes: 0, files: 0, packages: 0 }
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name)
      const st = lstatSync(p)
      total.diskBytes += st.blocks * 512
      if (e.isDirectory()) {
        if (e.name !== '.bin' && e.name !== '.cache') walk(p)
      } else {
        total.bytes += st.size
        total.files += 1
        if (e.name === 'package.json' && /node_modules\/(@[^/]+\/)?[^/@]+$/.test(d)) total.packages += 1
      }
    }
  }
  walk(dir)
  return total
}

/** Median cold `require(spec)` in fresh processes (cwd = project), with RSS after load. */
export function coldRequire(project, spec, runs = 11) {
  const code = `const t=process.hrtime.bigint();require(${JSON.stringify(spec)});const ms=Number(process.hrtime.bigint()-t)/1e6;console.log(JSON.stringify({ms,rss:process.memoryUsage().rss/1048576}))`
  const xs = []
  for (let i = 0; i < runs; i++) {
    xs.push(JSON.parse(execFileSync(process.execPath, ['-e', code], { cwd: project, encoding: 'utf8' })))
  }
  const median = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)]
  return { ms: median(xs.map((x) => x.ms)), rssMiB: median(xs.map((x) => x.rss)), runs }
}

/** Whether an ELF64 file has a `.debug_info` section (a `napi build` without `--release`). */
export function hasDebugInfo(file) {
  const b = readFileSync(file)
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false // not ELF64: unknown, say no
  const shoff = Number(b.readBigUInt64LE(0x28))
  const shentsize = b.readUInt16LE(0x3a)
  const shnum = b.readUInt16LE(0x3c)
  const strtab = shoff + b.readUInt16LE(0x3e) * shentsize
  const strOff = Number(b.readBigUInt64LE(strtab + 0x18))
  for (let i = 0; i < shnum; i++) {
    const nameOff = strOff + b.readUInt32LE(shoff + i * shentsize)
    if (b.toString('latin1', nameOff, nameOff + 12) === '.debug_info\0') return true
  }
  return false
}

/**
 * Runs the whole measurement; returns `{ ours, official, ratios }` (plain data). Temp
 * projects are removed afterwards.
 */
export async function installBench({ runs = 11, nodeFile, log = console.error } = {}) {
  const packed = packCached({ nodeFile })
  const debug = hasDebugInfo(packed.nodeFile)
  const oursDir = mkdtempSync(join(tmpdir(), 'forge-install-ours-'))
  const officialDir = mkdtempSync(join(tmpdir(), 'forge-install-official-'))
  try {
    log(`installing ${packed.main.name} (packed tarballs${debug ? ', DEBUG build of the addon' : ''})...`)
    installPacked({ dir: oursDir, packed })
    log(`installing ${OFFICIAL}...`)
    writeFileSync(join(officialDir, 'package.json'), JSON.stringify({ name: 'official-consumer', version: '1.0.0', private: true }))
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', OFFICIAL], { cwd: officialDir, stdio: ['ignore', 'pipe', 'inherit'] })

    log(`cold require, ${runs} fresh processes each...`)
    const measure = (dir, spec) => ({ ...treeSize(join(dir, 'node_modules')), load: coldRequire(dir, spec, runs) })
    const ours = {
      package: `${packed.main.name}@${packed.main.version}`,
      addonBytes: packed.nodeBytes,
      addonDebugBuild: debug,
      tarballBytes: packed.main.size + packed.platform.size,
      ...measure(oursDir, '@smartapi-forge/daytona'),
    }
    const official = { package: OFFICIAL, ...measure(officialDir, '@daytonaio/sdk') }
    const ratios = {
      size: official.bytes / ours.bytes,
      diskSize: official.diskBytes / ours.diskBytes,
      files: official.files / ours.files,
      load: official.load.ms / ours.load.ms,
      rss: official.load.rssMiB / ours.load.rssMiB,
    }
    return { date: new Date().toISOString(), node: process.version, ours, official, ratios, goals: { diskSize: ratios.diskSize >= 10, load: ratios.load >= 10 } }
  } finally {
    rmSync(oursDir, { recursive: true, force: true })
    rmSync(officialDir, { recursive: true, force: true })
  }
}

/**
 * The goals in words. "Installed" is measured as `du` counts it (blocks on disk): the space an
 * install takes. The apparent-bytes ratio is printed beside it and judged separately, since
 * the official SDK's bytes are spread over thousands of small files that each fill a block.
 */
export function installVerdict(r) {
  const met = (ok) => (ok ? 'met' : 'NOT met')
  const x = (v) => `${v.toFixed(1)}×`
  return [
    `installed size on disk ${x(r.ratios.diskSize)} smaller (goal ≥ 10×: ${met(r.goals.diskSize)})`,
    `apparent bytes ${x(r.ratios.size)} smaller (${r.ratios.size >= 10 ? 'also ≥ 10×' : 'below 10×: most of ours is the native addon\'s machine code'})`,
    `cold \`require\` ${x(r.ratios.load)} faster (goal ≥ 10×: ${met(r.goals.load)})`,
  ].join('; ')
}

/** The result as Markdown table lines (for the README's benchmark section). */
export function installTable(r) {
  const mb = (b) => (b / 1e6).toFixed(1)
  const x = (v) => `${v.toFixed(1)}×`
  const { ours: o, official: s, ratios } = r
  return [
    `| install (fresh project, npm) | ours | @daytonaio/sdk 0.218.0 | ratio |`,
    `|---|---|---|---|`,
    `| node_modules size (MB) | ${mb(o.bytes)} | ${mb(s.bytes)} | ${x(ratios.size)} smaller |`,
    `| node_modules on disk (MB) | ${mb(o.diskBytes)} | ${mb(s.diskBytes)} | ${x(ratios.diskSize)} smaller |`,
    `| files / packages | ${o.files} / ${o.packages} | ${s.files} / ${s.packages} | ${x(ratios.files)} fewer files |`,
    `| cold \`require\` (ms, median of ${o.load.runs}) | ${o.load.ms.toFixed(1)} | ${s.load.ms.toFixed(1)} | ${x(ratios.load)} faster |`,
    `| RSS after load (MiB) | ${o.load.rssMiB.toFixed(0)} | ${s.load.rssMiB.toFixed(0)} | ${x(ratios.rss)} less |`,
  ].concat(o.addonDebugBuild ? ['', '(our addon was a debug build in this run: `npm run build` for release figures)'] : [])
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name) => {
    const i = process.argv.indexOf(name)
    return i > 0 ? process.argv[i + 1] : undefined
  }
  const r = await installBench({ runs: Number(arg('--runs') ?? 11), nodeFile: arg('--node') })
  if (process.argv.includes('--json')) console.log(JSON.stringify(r, null, 2))
  else console.log(`\n${installTable(r).join('\n')}\n`)
  const verdict = installVerdict(r)
  console.log(verdict)
  if (!process.argv.includes('--no-readme') && !process.argv.includes('--json')) {
    const { writeSection } = await import('./readme.mjs')
    writeSection('install', [`Install size and cold load, measured by \`node bench/install.mjs\` on ${new Date().toISOString().slice(0, 10)} (packed tarballs installed with npm into fresh projects, Node ${process.version}):`, '', ...installTable(r), '', `Goals: ${verdict}.`].join('\n'))
  }
}

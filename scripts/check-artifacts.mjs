#!/usr/bin/env node
// Checks each built binary in npm/<platform>/ (scripts/build-all.mjs runs it after building):
//   - format and machine from the file's own header: ELF e_machine, Mach-O cputype, PE machine;
//   - it exports `napi_register_module_v1` (what Node calls to load an addon), read with LLVM's
//     object tools (rustup's llvm-tools component), which read all three formats;
//   - linux-gnu: the highest GLIBC_ version it needs is ≤ the floor (scripts/targets.mjs);
//     linux-musl: it needs no GLIBC_ version at all;
//   - PE (win32-x64-gnu): the DLLs it imports are Windows' own, none of MinGW's runtime DLLs
//     (a stock Windows has none) and not libnode.dll (a MinGW Node's; the official node.exe
//     has none): the napi functions are looked up in node.exe at load time (build-all.mjs).
// Prints one line per target and exits 1 if any check fails or a binary is missing.
//
//   node scripts/check-artifacts.mjs [--only linux-arm64-gnu,darwin-arm64]
import { execFileSync } from 'node:child_process'
import { existsSync, openSync, readSync, closeSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GLIBC_FLOOR, TARGETS } from './targets.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const i = process.argv.indexOf('--only')
const only = i === -1 ? null : process.argv[i + 1].split(',')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

/** rustup's LLVM tools (`rustup component add llvm-tools`). */
function llvmTool(name) {
  const sysroot = execFileSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).trim()
  const host = /host: (\S+)/.exec(execFileSync('rustc', ['-vV'], { encoding: 'utf8' }))[1]
  const path = join(sysroot, 'lib', 'rustlib', host, 'bin', name)
  if (!existsSync(path)) throw new Error(`${path} is missing: rustup component add llvm-tools`)
  return path
}
const tool = (name, args) => execFileSync(llvmTool(name), args, { encoding: 'utf8', maxBuffer: 64 << 20 })

/** The file's format and machine, from its header bytes. */
function header(file) {
  const fd = openSync(file, 'r')
  const b = Buffer.alloc(4096)
  readSync(fd, b, 0, b.length, 0)
  closeSync(fd)
  if (b.readUInt32BE(0) === 0x7f454c46) {
    return { format: 'ELF', machine: { 0x3e: 'x86_64', 0xb7: 'aarch64' }[b.readUInt16LE(18)] ?? `e_machine ${b.readUInt16LE(18)}` }
  }
  if (b.readUInt32LE(0) === 0xfeedfacf) {
    return { format: 'Mach-O', machine: { 0x01000007: 'x86_64', 0x0100000c: 'aarch64' }[b.readUInt32LE(4)] ?? `cputype ${b.readUInt32LE(4)}` }
  }
  if (b.toString('latin1', 0, 2) === 'MZ') {
    const pe = b.readUInt32LE(0x3c)
    if (b.toString('latin1', pe, pe + 4) === 'PE\0\0') {
      return { format: 'PE', machine: { 0x8664: 'x86_64', 0xaa64: 'aarch64' }[b.readUInt16LE(pe + 4)] ?? `machine ${b.readUInt16LE(pe + 4)}` }
    }
  }
  return { format: 'unknown', machine: 'unknown' }
}

/** The names the binary exports. */
function exportsOf(file, format) {
  if (format === 'PE') {
    return [...tool('llvm-readobj', ['--coff-exports', file]).matchAll(/Name: (\S+)/g)].map((m) => m[1])
  }
  const args = format === 'ELF' ? ['-D', '--defined-only', file] : ['-g', '--defined-only', file]
  return tool('llvm-nm', args)
    .split('\n')
    .map((l) => l.trim().split(/\s+/).pop())
    .filter(Boolean)
    .map((n) => (format === 'Mach-O' ? n.replace(/^_/, '') : n))
}

/** The GLIBC_x.y versions an ELF binary needs, and its NEEDED libraries. */
function elfNeeds(file) {
  const versions = tool('llvm-readobj', ['--elf-output-style=GNU', '-V', file])
  const glibc = [...new Set([...versions.matchAll(/Name: GLIBC_([0-9.]+)/g)].map((m) => m[1]))]
  const dynamic = tool('llvm-readobj', ['--elf-output-style=GNU', '-d', file])
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1])
  return { glibc, needed }
}

/** The DLLs a PE binary imports. */
const peImports = (file) => [...new Set([...tool('llvm-readobj', ['--coff-imports', file]).matchAll(/Name: (\S+\.dll)/gi)].map((m) => m[1]))]

/** DLLs a Windows addon must not import: MinGW's runtime, and a MinGW Node's libnode.dll. */
const FOREIGN_DLLS = [/^libgcc/i, /^libwinpthread/i, /^libstdc\+\+/i, /^libnode\.dll$/i]

const cmp = (a, b) => {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)]
  for (let k = 0; k < Math.max(x.length, y.length); k++) if ((x[k] ?? 0) !== (y[k] ?? 0)) return (x[k] ?? 0) - (y[k] ?? 0)
  return 0
}

let failed = 0
for (const t of TARGETS.filter((t) => pkg.napi.targets.includes(t.triple) && (!only || only.includes(t.platform)))) {
  const file = join(root, 'npm', t.platform, `${pkg.napi.binaryName}.${t.platform}.node`)
  const problems = []
  const facts = []
  if (!existsSync(file)) {
    problems.push('missing (npm run build:all)')
  } else {
    const h = header(file)
    facts.push(`${h.format} ${h.machine}`, `${(readFileSync(file).length / 1e6).toFixed(2)} MB`)
    if (h.format !== t.format || h.machine !== t.machine) problems.push(`expected ${t.format} ${t.machine}`)
    if (!exportsOf(file, h.format).includes('napi_register_module_v1')) problems.push('does not export napi_register_module_v1')
    else facts.push('exports napi_register_module_v1')
    if (h.format === 'ELF') {
      const { glibc, needed } = elfNeeds(file)
      const highest = glibc.sort(cmp).at(-1)
      if (t.abi === 'gnu') {
        facts.push(`needs GLIBC_${highest ?? 'none'} (floor ${GLIBC_FLOOR})`)
        if (highest && cmp(highest, GLIBC_FLOOR) > 0) problems.push(`needs GLIBC_${highest}, above the floor ${GLIBC_FLOOR}`)
      } else {
        facts.push(`needs ${needed.join(', ') || 'no shared library'}`)
        if (glibc.length) problems.push(`a musl build needs GLIBC_${highest}`)
        if (needed.some((n) => n.startsWith('libc.so.6'))) problems.push('a musl build links glibc (libc.so.6)')
      }
    }
    if (h.format === 'PE') {
      const dlls = peImports(file)
      facts.push(`imports ${dlls.join(', ')}`)
      const foreign = dlls.filter((d) => FOREIGN_DLLS.some((r) => r.test(d)))
      if (foreign.length) problems.push(`imports ${foreign.join(', ')}, absent from a stock Windows with the official Node`)
    }
  }
  failed += problems.length ? 1 : 0
  console.log(`${problems.length ? 'FAIL' : 'ok  '} ${t.platform.padEnd(17)} ${t.triple.padEnd(27)} ${[...facts, ...problems].join('; ')}`)
}
if (failed) {
  console.error(`${failed} artifact(s) failed the check`)
  process.exit(1)
}

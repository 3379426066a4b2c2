#!/usr/bin/env node
// `npm run build:all`: builds the addon for every native target in package.json `napi.targets`
// from this one Linux x64 machine, puts each binary in its npm/<platform>/ package, then
// checks every artifact (scripts/check-artifacts.mjs). Not run in CI (one target there).
//
//   node scripts/build-all.mjs [--profile release] [--only linux-arm64-gnu,darwin-arm64]
//
// Needs: the Rust targets (`rustup target add <triple>` for each), zig (`pip install ziglang`)
// and cargo-zigbuild (`pip install cargo-zigbuild` or `cargo install cargo-zigbuild`). Linux gnu
// targets are built against glibc 2.17 (cargo-zigbuild's `<triple>.2.17`: zig links against
// that version's symbols), so they load on any glibc from 2.17 on. Windows is x86_64-pc-windows-gnu:
// msvc needs cargo-xwin, which downloads Microsoft's CRT and SDK, not reachable from here; gnu
// needs MinGW-w64 (Debian: `apt-get install gcc-mingw-w64-x86-64`, which brings the linker rustc
// uses for it and `x86_64-w64-mingw32-dlltool`) and `rustup target add x86_64-pc-windows-gnu`.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GLIBC_FLOOR, TARGETS } from './targets.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const arg = (name, fallback) => {
  const i = process.argv.indexOf(name)
  return i === -1 ? fallback : process.argv[i + 1]
}
const profile = arg('--profile', 'release')
const only = arg('--only', null)?.split(',')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const binaryName = pkg.napi.binaryName

const targets = TARGETS.filter((t) => pkg.napi.targets.includes(t.triple) && (!only || only.includes(t.platform)))
const run = (cmd, args, env = {}) => {
  console.error(`$ ${cmd} ${args.join(' ')}`)
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, CARGO_INCREMENTAL: '0', ...env } })
}
const profileArgs = profile === 'release' ? ['--release'] : ['--profile', profile]
const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, 'target')

const failed = []
for (const t of targets) {
  try {
    build(t)
  } catch (e) {
    // One target's toolchain problem does not stop the others; the check below reports it.
    console.error(`build of ${t.triple} failed: ${e.message.split('\n')[0]}`)
    failed.push(t.platform)
  }
}
run('node', ['scripts/check-artifacts.mjs', ...(only ? ['--only', only.join(',')] : [])])
if (failed.length) {
  console.error(`not built: ${failed.join(', ')}`)
  process.exit(1)
}

/** Builds one target and copies its binary into npm/<platform>/. */
function build(t) {
  const out = join(targetDir, 'build-all', t.platform)
  mkdirSync(out, { recursive: true })
  const node = `${binaryName}.${t.platform}.node`
  // The glibc version rides on the triple given to cargo-zigbuild (`x86_64-unknown-linux-gnu.2.17`).
  const triple = t.abi === 'gnu' && t.os === 'linux' ? `${t.triple}.${GLIBC_FLOOR}` : t.triple
  if (t.os === 'windows') {
    // napi's --cross-compile sends every Windows target to cargo-xwin (msvc only), so no -x:
    // a plain `cargo build` for the gnu triple, whose default linker is MinGW-w64's gcc.
    const env = { LIBNODE_PATH: nodeImportLibrary(join(out, 'libnode')) }
    run('npx', ['napi', 'build', '--platform', '--js', 'binding.js', '--target', triple, ...profileArgs, '-o', out], env)
  } else {
    // -o: the loader and typings napi writes for this build go to the scratch folder, not the
    // checked-in binding.js / index.d.ts (they are the same for every target anyway).
    run('npx', ['napi', 'build', '--platform', '--js', 'binding.js', '-x', '--target', triple, ...profileArgs, '-o', out])
  }
  copyFileSync(join(out, node), join(root, 'npm', t.platform, node))
  console.error(`built ${join('npm', t.platform, node)}`)
}

/**
 * A MinGW import library for the napi functions (`libnode.dll.a`, exporting them from
 * `node.exe`) in `dir`, for napi-build's Windows-gnu link; returns `dir` for LIBNODE_PATH.
 *
 * The addon itself needs no import library: napi-sys's default `dyn-symbols` feature resolves
 * every napi function at load time from the process that loaded it (node.exe), so it loads in
 * the official (MSVC-built) Node. But napi-build's `windows::setup_gnu()` panics unless
 * LIBNODE_PATH holds a file named `libnode.dll`, and then links with `-lnode`. So:
 * - `libnode.dll.a`, made by dlltool from a .def naming every napi function that napi-sys
 *   declares, as `node.exe` exports them: what `-lnode` finds (GNU ld tries `libnode.dll.a`
 *   before `libnode.dll`), and correct were a symbol ever linked directly;
 * - `libnode.dll`, an empty placeholder: only napi-build's existence check reads it; the
 *   linker never opens it, because it finds `libnode.dll.a` first.
 */
function nodeImportLibrary(dir) {
  mkdirSync(dir, { recursive: true })
  const metadata = JSON.parse(
    execFileSync('cargo', ['metadata', '--format-version', '1', '--filter-platform', 'x86_64-pc-windows-gnu'], { cwd: root, encoding: 'utf8', maxBuffer: 256 << 20 }),
  )
  const napiSys = metadata.packages.find((p) => p.name === 'napi-sys')
  const source = readFileSync(join(dirname(napiSys.manifest_path), 'src', 'functions.rs'), 'utf8')
  const names = [...new Set([...source.matchAll(/\bfn ((?:napi|node_api)_\w+)\s*\(/g)].map((m) => m[1]))].sort()
  if (names.length < 100) throw new Error(`found only ${names.length} napi functions in napi-sys ${napiSys.version}`)
  writeFileSync(join(dir, 'node.def'), `LIBRARY node.exe\nEXPORTS\n${names.map((n) => `  ${n}\n`).join('')}`)
  run('x86_64-w64-mingw32-dlltool', ['-d', join(dir, 'node.def'), '-l', join(dir, 'libnode.dll.a')])
  writeFileSync(join(dir, 'libnode.dll'), '')
  return dir
}

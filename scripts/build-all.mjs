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
// msvc needs cargo-xwin, which downloads Microsoft's CRT and SDK, not reachable from here.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs'
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
const profileDir = profile === 'release' || profile === 'dev' ? (profile === 'dev' ? 'debug' : 'release') : profile

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
    // napi's --cross-compile sends every Windows target to cargo-xwin (msvc only): build the
    // gnu one with cargo-zigbuild directly and name it as napi would.
    run('cargo', ['zigbuild', ...profileArgs, '--target', triple, '-p', 'smartapi-forge-daytona'])
    copyFileSync(join(targetDir, t.triple, profileDir, 'smartapi_forge_daytona.dll'), join(out, node))
  } else {
    // -o: the loader and typings napi writes for this build go to the scratch folder, not the
    // checked-in binding.js / index.d.ts (they are the same for every target anyway).
    run('npx', ['napi', 'build', '--platform', '--js', 'binding.js', '-x', '--target', triple, ...profileArgs, '-o', out])
  }
  copyFileSync(join(out, node), join(root, 'npm', t.platform, node))
  console.error(`built ${join('npm', t.platform, node)}`)
}

// Makes a fresh clone usable: installs the npm devDependencies when they are missing and
// builds the native addon (cargo is incremental, so this is quick when nothing changed).
//
//   node scripts/ensure-built.mjs            the test build (`[profile.test-addon]`: optimised,
//                                            no fat LTO, incremental), what `npm test` loads
//   node scripts/ensure-built.mjs --release  the release build (fat LTO), for `npm run bench`,
//                                            the demo and packaging
// Both write the same daytona.linux-x64-gnu.node (and regenerate index.d.ts and binding.js,
// napi-rs's loader, which the hand-written index.js wraps).
// First typings.d.ts is generated from the Rust types (src/typings.rs, run as a test of the
// binding in the same profile, so it reuses the build's dependencies); napi build prepends it
// to the index.d.ts it generates (package.json `napi.dtsHeaderFile`).
import { execSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' })

if (!existsSync(join(root, 'node_modules', '@napi-rs', 'cli'))) {
  run(existsSync(join(root, 'package-lock.json')) ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund')
}
const profile = process.argv.includes('--release') ? '--release' : '--profile test-addon'
if (!process.env.FORGE_SKIP_BUILD) {
  const cargoProfile = profile === '--release' ? '--release' : '--profile test-addon'
  execSync(`cargo test ${cargoProfile} -p smartapi-forge-daytona --lib typings::tests::typings_are_generated`, {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, FORGE_WRITE_TYPINGS: '1' },
  })
  run(`npx napi build --platform --js binding.js ${profile}`)
}

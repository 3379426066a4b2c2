// Makes a fresh clone usable: installs the npm devDependencies when they are missing and
// builds the native addon (cargo is incremental, so this is quick when nothing changed).
import { execSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = (cmd) => execSync(cmd, { cwd: root, stdio: 'inherit' })

if (!existsSync(join(root, 'node_modules', '@napi-rs', 'cli'))) {
  run(existsSync(join(root, 'package-lock.json')) ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund')
}
if (!process.env.FORGE_SKIP_BUILD) run('npx napi build --platform --release')

// Honest typings: the TypeScript of the JSON-shaped inputs and outputs and of the errors is
// generated from the Rust types (src/typings.rs → typings.d.ts, prepended to index.d.ts by
// napi build), and under `tsc --strict` correct use compiles while misspelt error codes,
// option names and literal values each fail at the line that has them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from './helpers.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')

test('index.d.ts begins with the generated typings, and those are what the Rust types give', { timeout: 600_000 }, () => {
  const generated = readFileSync(join(root, 'typings.d.ts'), 'utf8')
  const index = readFileSync(join(root, 'index.d.ts'), 'utf8')
  assert.ok(index.startsWith(generated), 'napi build prepends typings.d.ts to index.d.ts (package.json napi.dtsHeaderFile)')
  for (const name of ['DaytonaErrorCode', 'CloneAndPreviewOptions', 'VerifyReport', 'FrameworkDetection', 'CreateSandboxOptions']) {
    assert.match(generated, new RegExp(`^export type ${name} =`, 'm'))
  }
  assert.match(generated, /^export declare class DaytonaError extends Error/m)
  // The same check as `cargo test`: the committed file against a fresh generation (the test
  // profile of scripts/ensure-built.mjs, whose build this reuses).
  try {
    execFileSync('cargo', ['test', '--profile', 'test-addon', '-p', 'smartapi-forge-daytona', '--lib', 'typings::tests::typings_are_generated'], {
      cwd: root,
      encoding: 'utf8',
      stdio: 'pipe',
      env: { ...process.env, FORGE_WRITE_TYPINGS: '' },
    })
  } catch (e) {
    assert.fail(`typings.d.ts is stale:\n${e.stdout}${e.stderr}`)
  }
})

/** Runs tsc --strict over `files` (name → source) importing the package's index.d.ts. */
function typecheck(t, files) {
  const dir = tempDir('types')
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'es2022',
        module: 'esnext',
        moduleResolution: 'bundler',
        lib: ['es2022', 'dom'],
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
        skipLibCheck: false,
        paths: { '@smartapi-forge/daytona': [join(root, 'index.d.ts')] },
      },
      include: ['*.ts'],
    }),
  )
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  try {
    execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', timeout: 170_000 })
    return ''
  } catch (e) {
    return `${e.stdout}${e.stderr}`
  }
}

const GOOD = `import {
  Daytona, DaytonaError, isDaytonaError,
  type CloneAndPreviewOptions, type DaytonaErrorCode, type PreviewStep, type VerifyReason,
} from '@smartapi-forge/daytona'

const daytona = new Daytona({ backend: 'local', requestTimeoutMs: 1000 })

// Each step's output feeds the next step's input as Inngest hands it back (nulls included).
export async function steps(): Promise<string> {
  const created = await daytona.createSandbox({ workspaceClass: 'small', cpu: 2, memory: 4, name: null })
  const cloned = await daytona.cloneRepository({ sandboxId: created.sandboxId, repoUrl: 'https://github.com/o/r', branch: null })
  const detection = await daytona.detectFramework({ sandboxId: cloned.sandboxId, path: cloned.path })
  const installed = await daytona.installDependencies({ sandboxId: cloned.sandboxId, path: cloned.path, detection })
  const started = await daytona.startDevServer({ sandboxId: cloned.sandboxId, path: cloned.path, detection, port: detection.port })
  const verified = await daytona.verifyPreview({
    sandboxId: started.sandboxId, port: started.port, sessionId: started.sessionId,
    commandId: started.commandId, framework: started.framework,
  })
  const last: VerifyReason | null = verified.lastProbe
  const reason: VerifyReason = verified.reason
  return \`\${verified.previewUrl} \${installed.command ?? ''} \${last ?? reason}\`
}

export const options: CloneAndPreviewOptions = {
  repoUrl: 'https://github.com/o/r', token: null, cpu: 2, memory: 4, disk: 10, autoArchiveInterval: 60,
  volumes: [{ volumeId: 'v', mountPath: '/data' }], workspaceClass: 'large', keepOnFailure: true,
  onProgress: (e) => { const s: PreviewStep = e.step; return s },
}

export async function handled(): Promise<number> {
  try {
    const r = await daytona.cloneAndPreview(options)
    return r.port
  } catch (e) {
    if (e instanceof DaytonaError) {
      const code: DaytonaErrorCode = e.code
      switch (e.code) {
        case 'GIT_AUTH_FAILED': return 1
        case 'PREVIEW_VERIFY_FAILED': return e.reason === 'FRAMEWORK_ERROR' ? 2 : 3
        case 'DAYTONA_RATE_LIMITED': return e.retryable ? 4 : 5
        default: return code.length
      }
    }
    if (isDaytonaError(e)) return e.status ?? 0
    throw e
  }
}
`

/** Each line is a misuse; the comment says which tsc errors it may give (2353 and 2561 are
 * both "unknown property", 2322 and 2820 both "not assignable", each latter with a "did you
 * mean"). */
const BAD = `import { Daytona, DaytonaError, detectFrameworkSync, type DaytonaErrorCode, type PreviewStep, type VerifyReason } from '@smartapi-forge/daytona'
const daytona = new Daytona()
export async function misuse(e: DaytonaError) {
  const code: DaytonaErrorCode = 'GIT_AUTH_FAIL' // TS2322 TS2820
  if (e.code === 'DAYTONA_NOT_FOUNDD') return // TS2367
  await daytona.create({ imagee: 'node:22' }) // TS2353 TS2561
  await daytona.cloneAndPreview({ repoUrl: 'x', instalCommand: 'npm ci' }) // TS2353 TS2561
  await daytona.createSandbox({ workspaceClass: 'huge' }) // TS2322
  new Daytona({ backend: 'moon' }) // TS2322
  await daytona.cloneRepository({ sandboxId: 's' }) // TS2345 TS2741
  const step: PreviewStep = 'deploy' // TS2322
  const reason: VerifyReason = 'BROKEN' // TS2322
  detectFrameworkSync({}, { prot: 3000 }) // TS2353 TS2561
  return [code, step, reason]
}
`

test('tsc --strict: correct use compiles', { timeout: 180_000 }, (t) => {
  const out = typecheck(t, { 'good.ts': GOOD })
  assert.equal(out, '', `tsc reported errors:\n${out}`)
})

test('tsc --strict: misspelt codes, options and literal values each fail at their line', { timeout: 180_000 }, (t) => {
  const out = typecheck(t, { 'bad.ts': BAD })
  const got = new Map()
  for (const m of out.matchAll(/bad\.ts\((\d+),\d+\): error (TS\d+)/g)) {
    got.set(Number(m[1]), [...(got.get(Number(m[1])) ?? []), m[2]])
  }
  const lines = BAD.split('\n')
  const expected = lines.flatMap((l, i) => (l.includes('// TS') ? [[i + 1, l.split('// ')[1].split(' ')]] : []))
  assert.equal(expected.length, 10)
  for (const [line, codes] of expected) {
    const errors = got.get(line) ?? []
    assert.ok(errors.length > 0 && errors.every((c) => codes.includes(c)), `line ${line} (${lines[line - 1].trim()}): expected ${codes}, got ${errors}\n${out}`)
  }
  assert.deepEqual([...got.keys()].sort((a, b) => a - b), expected.map(([l]) => l), out)
})

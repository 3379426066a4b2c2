#!/usr/bin/env node
// Extracts every ```typescript sample of the integration guide into __test__/guide-types/
// (one .ts file per sample) with only the import changed to '@smartapi-forge/daytona', so
// `tsc --strict` checks the guide's code against our index.d.ts (__test__/guide-types.test.mjs).
//
//   node scripts/guide-samples.mjs          regenerate the files
//   node scripts/guide-samples.mjs --check  exit 1 when the checked-in files are stale
//   node scripts/guide-samples.mjs --official  the same samples (without our 'api' patches)
//        type-checked against @daytonaio/sdk instead, in a temp folder: the error count the
//        guide's code has against the official SDK it was written for (a comparison only)
//
// The guide's fragments are mechanically made checkable, without changing what they call:
//  - a fragment that declares the same `const` twice ("Basic creation" / "With custom
//    configuration") has each run of paragraphs that starts a redeclaration wrapped in `{ }`;
//  - a fragment without import/export gets `export {}` (each file is its own module);
//  - the variables a fragment assumes from earlier text (`sandbox`, `daytona`, `sessionId`,
//    ...) are declared in context.d.ts; outside modules (supabase, inngest, next, react,
//    vite) have minimal declarations in shims.d.ts.
// Everything else that had to change is a PATCH below: explicit, commented, and it fails
// loudly when the guide no longer contains the text it replaces. `kind` says why:
//   'api'   our API differs from the guide (listed in the README),
//   'guide' the guide's own code does not compile under --strict (also against @daytonaio/sdk),
//   'e2b'   the "Old (E2B)" half of a migration sample (code of another SDK, dropped).
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const GUIDE = process.env.FORGE_GUIDE ?? resolve(root, '..', 'shared', 'seed', '000_2eb3c0d31d771d17.txt')
export const OUT = join(root, '__test__', 'guide-types')
const PKG = '@smartapi-forge/daytona'

/** Patches by sample file name (see the header for `kind`). `all` replaces every occurrence. */
export const PATCHES = {
  '01-4-initialize-client.ts': [
    {
      kind: 'guide',
      why: '`VolumeMount` is used but never imported',
      find: `import { Daytona } from '${PKG}';`,
      replace: `import { Daytona, type VolumeMount } from '${PKG}';`,
    },
  ],
  '03-for-next-js-projects.ts': [
    {
      kind: 'api',
      why: 'a native addon is loaded by Node, not bundled: Next.js needs it in serverExternalPackages (server code only; the browser fallbacks below do not apply)',
      find: `module.exports = {\n`,
      replace: `module.exports = {\n  serverExternalPackages: ['${PKG}'],\n`,
    },
    {
      kind: 'guide',
      why: "the webpack callback's parameters are implicitly any (a .js config file is not type-checked)",
      find: `webpack: (config, { isServer }) => {`,
      replace: `webpack: (config: any, { isServer }: { isServer: boolean }) => {`,
    },
  ],
  '12-downloading-files.ts': [
    {
      kind: 'api',
      why: 'downloadFiles reports a file it could not read in that item\'s `error` instead of failing the batch, so `content` is optional',
      find: '${file.content.toString()}',
      replace: "${file.content?.toString() ?? file.error?.message}",
    },
  ],
  '40-1-quota-exceeded.ts': [
    {
      kind: 'guide',
      why: 'a caught error is `unknown` under --strict (useUnknownInCatchVariables)',
      find: 'error.message',
      replace: '(error as Error).message',
      all: true,
    },
  ],
  '45-retry-strategy.ts': [
    {
      kind: 'guide',
      why: 'a caught error is `unknown` under --strict (useUnknownInCatchVariables)',
      find: '`Attempt ${attempt} failed:`, error.message',
      replace: '`Attempt ${attempt} failed:`, (error as Error).message',
    },
  ],
  '52-4-update-imports.ts': [
    {
      kind: 'e2b',
      why: 'the E2B import is dropped (it would also clash with our Sandbox)',
      find: `// Old (E2B)\nimport { Sandbox } from '@e2b/code-interpreter';\n\n`,
      replace: '',
    },
  ],
  '53-5-replace-sandbox-creation.ts': [
    {
      kind: 'e2b',
      why: 'the E2B half is dropped',
      find: `// Old (E2B)\nconst sandbox = await Sandbox.create(templateId, {\n  timeoutMs: 300000,\n});\n\n`,
      replace: '',
    },
  ],
  '54-6-replace-command-execution.ts': [
    {
      kind: 'e2b',
      why: 'the E2B half is dropped; its `command` (a string) is declared instead',
      find: `// Old (E2B)\nconst result = await sandbox.commands.run(command, {\n  timeoutMs: 120000,\n});\n\n`,
      replace: 'declare const command: string\n\n',
    },
  ],
  '55-7-replace-preview-url.ts': [
    {
      kind: 'e2b',
      why: 'the E2B half is dropped',
      find: '// Old (E2B)\nconst url = `https://${sandbox.getHost(port)}`;\n\n',
      replace: '',
    },
  ],
}

/** The ```typescript blocks: [{ index, heading, line, code }]. */
export function extractSamples(text) {
  const lines = text.split('\n')
  const samples = []
  let heading = 'top'
  for (let i = 0; i < lines.length; i++) {
    const h = /^#{2,4}\s+(.*)$/.exec(lines[i])
    if (h) heading = h[1].trim()
    const open = /^(\s*)```typescript\s*$/.exec(lines[i])
    if (!open) continue
    const indent = open[1].length
    const body = []
    let j = i + 1
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]); j++) body.push(lines[j].slice(Math.min(indent, lines[j].search(/\S|$/))))
    samples.push({ index: samples.length + 1, heading, line: i + 1, code: body.join('\n') })
    i = j
  }
  return samples
}

const slug = (s) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40)
export const fileName = (s) => `${String(s.index).padStart(2, '0')}-${slug(s.heading)}.ts`

/** Brace depth change of a line (strings and comments are close enough for the guide's code). */
function depthDelta(line) {
  const code = line.replace(/\/\/.*$/, '').replace(/'(?:[^'\\]|\\.)*'/g, "''").replace(/"(?:[^"\\]|\\.)*"/g, '""')
  let d = 0
  for (const c of code) {
    if ('{(['.includes(c)) d++
    else if ('})]'.includes(c)) d--
  }
  return d
}

/** Wraps runs of paragraphs in `{ }` where a top-level `const`/`let` name is declared again. */
function scopeRedeclarations(code) {
  const lines = code.split('\n')
  const imports = []
  const paragraphs = [[]]
  let depth = 0
  for (const line of lines) {
    if (depth === 0 && /^import\s/.test(line)) {
      imports.push(line)
      continue
    }
    if (depth === 0 && line.trim() === '' && paragraphs.at(-1).length) paragraphs.push([])
    else if (line.trim() !== '' || depth > 0) paragraphs.at(-1).push(line)
    depth += depthDelta(line)
  }
  const groups = [[]]
  let declared = new Set()
  for (const p of paragraphs.filter((p) => p.length)) {
    const names = p.map((l) => /^(?:const|let|var)\s+([A-Za-z_$][\w$]*)/.exec(l)?.[1]).filter(Boolean)
    if (names.some((n) => declared.has(n))) {
      groups.push([])
      declared = new Set()
    }
    names.forEach((n) => declared.add(n))
    groups.at(-1).push(p)
  }
  if (groups.length === 1) return code
  const body = groups.map((g) => {
    const text = g.map((p) => p.join('\n')).join('\n\n')
    if (/^export\s/m.test(text)) throw new Error('cannot scope a run of paragraphs that exports')
    return `{\n${text.replace(/^(?=.)/gm, '  ')}\n}`
  })
  return [...imports, ...(imports.length ? [''] : []), body.join('\n\n')].join('\n')
}

/** One sample's file text. */
export function render(sample) {
  const name = fileName(sample)
  let code = sample.code.replaceAll(`from '@daytonaio/sdk'`, `from '${PKG}'`)
  const applied = []
  for (const p of PATCHES[name] ?? []) {
    if (!code.includes(p.find)) throw new Error(`${name}: patch "${p.why}" no longer matches the guide`)
    code = p.all ? code.replaceAll(p.find, p.replace) : code.replace(p.find, p.replace)
    applied.push(p)
  }
  code = scopeRedeclarations(code)
  if (!/^\s*(import|export)\s/m.test(code)) code += '\n\nexport {}'
  const header = [
    `// Generated by scripts/guide-samples.mjs from the integration guide, sample ${sample.index}`,
    `// ("${sample.heading}", guide line ${sample.line}). Do not edit: change the script.`,
    ...applied.map((p) => `// PATCH (${p.kind}): ${p.why}`),
  ]
  return `${header.join('\n')}\n${code.trimEnd()}\n`
}

/** { fileName: text } of every sample. */
export function generate(guideText = readFileSync(GUIDE, 'utf8')) {
  const files = {}
  for (const s of extractSamples(guideText)) files[fileName(s)] = render(s)
  const unused = Object.keys(PATCHES).filter((n) => !files[n])
  if (unused.length) throw new Error(`patches for samples that do not exist: ${unused.join(', ')}`)
  return files
}

/** tsc over the samples against @daytonaio/sdk (see --official); returns { errors, byFile }. */
export function checkAgainstOfficial() {
  const OFF = 'OFFICIAL_SDK'
  const saved = Object.fromEntries(Object.entries(PATCHES))
  try {
    for (const k of Object.keys(PATCHES)) {
      PATCHES[k] = saved[k].filter((p) => p.kind !== 'api').map((p) => ({ ...p, find: p.find.replaceAll(PKG, OFF), replace: p.replace.replaceAll(PKG, OFF) }))
    }
    const files = generate(readFileSync(GUIDE, 'utf8').replaceAll('@daytonaio/sdk', OFF))
    const dir = mkdtempSync(join(tmpdir(), 'guide-official-'))
    try {
      for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t.replaceAll(OFF, '@daytonaio/sdk'))
      for (const f of ['shims.d.ts', 'client.ts']) copyFileSync(join(OUT, f), join(dir, f))
      const ctx = readFileSync(join(OUT, 'context.d.ts'), 'utf8').replaceAll(PKG, '@daytonaio/sdk')
      writeFileSync(join(dir, 'context.d.ts'), ctx.replace(/import\('@daytonaio\/sdk'\)\.ExecResult/, 'any')) // no such type there
      const tsconfig = readFileSync(join(OUT, 'tsconfig.json'), 'utf8').replace('"skipLibCheck": false', '"skipLibCheck": true')
      writeFileSync(join(dir, 'tsconfig.json'), tsconfig)
      symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'))
      let out = ''
      try {
        out = execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' })
      } catch (e) {
        out = e.stdout
      }
      const byFile = {}
      for (const m of out.matchAll(/^(?:.*\/)?([\w.-]+\.ts)\(\d+,\d+\): error (TS\d+: .*)$/gm)) (byFile[m[1]] ??= []).push(m[2])
      return { errors: Object.values(byFile).flat().length, byFile }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  } finally {
    Object.assign(PATCHES, saved)
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url) && process.argv.includes('--official')) {
  const r = checkAgainstOfficial()
  for (const [f, errs] of Object.entries(r.byFile)) for (const e of errs) console.log(`${f}: ${e}`)
  console.log(`\n${r.errors} errors in ${Object.keys(r.byFile).length} of the guide's samples against @daytonaio/sdk`)
} else if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = generate()
  const existing = existsSync(OUT) ? readdirSync(OUT).filter((f) => /^\d\d-.*\.ts$/.test(f)) : []
  if (process.argv.includes('--check')) {
    const stale = [
      ...Object.entries(files).filter(([n, t]) => !existsSync(join(OUT, n)) || readFileSync(join(OUT, n), 'utf8') !== t).map(([n]) => n),
      ...existing.filter((n) => !files[n]),
    ]
    if (stale.length) {
      console.error(`stale guide samples (run node scripts/guide-samples.mjs): ${stale.join(', ')}`)
      process.exit(1)
    }
    console.log(`${Object.keys(files).length} guide samples up to date`)
  } else {
    mkdirSync(OUT, { recursive: true })
    for (const n of existing) if (!files[n]) rmSync(join(OUT, n))
    for (const [n, t] of Object.entries(files)) writeFileSync(join(OUT, n), t)
    console.log(`wrote ${Object.keys(files).length} samples to ${OUT}`)
  }
}

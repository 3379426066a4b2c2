// Writes a generated section of the README: the text between `<!-- bench-NAME:start -->` and
// `<!-- bench-NAME:end -->` is replaced (the markers are added under "## Benchmarks" when
// missing), so every benchmark table in the README comes from a bench run, never by hand.
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const readme = join(dirname(fileURLToPath(import.meta.url)), '..', 'README.md')

export function writeSection(name, markdown) {
  const start = `<!-- bench-${name}:start -->`
  const end = `<!-- bench-${name}:end -->`
  let text = readFileSync(readme, 'utf8')
  if (!text.includes(start) || !text.includes(end)) {
    const anchor = '<!-- bench:end -->'
    const at = text.includes(anchor) ? text.indexOf(anchor) + anchor.length : text.length
    text = `${text.slice(0, at)}\n\n${start}\n${end}${text.slice(at)}`
  }
  const out = text.slice(0, text.indexOf(start) + start.length) + '\n' + markdown.trim() + '\n' + text.slice(text.indexOf(end))
  writeFileSync(readme, out)
}

// The API reference in docs/api/ is generated from the TSDoc of js/ (and of the binding's generated
// native/binding.d.ts) by `npm run docs` (TypeDoc, options in typedoc.json). These tests regenerate it
// and compare, so a reference that no longer matches the sources fails, and check that the options
// make an undocumented export fail the generation.
import test from 'ava'
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const ROOT = process.cwd()
const COMMITTED = path.join(ROOT, 'docs', 'api')
const TYPEDOC = path.join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc')

/** Runs TypeDoc with typedoc.json and `args`; resolves with its exit status and output. */
function typedoc(args: string[]): Promise<{ status: number; output: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TYPEDOC, ...args], { cwd: ROOT, timeout: 60_000, env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ status, output: `${stdout}${stderr}` })
    })
  })
}

/** Every file under `dir`, as a relative path → its contents. */
function tree(dir: string): Map<string, string> {
  const files = new Map<string, string>()
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const file = path.join(entry.parentPath, entry.name)
    files.set(path.relative(dir, file), fs.readFileSync(file, 'utf8'))
  }
  return files
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reactor-socket-docs-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('docs/api is what `npm run docs` makes from the sources now', async (t) => {
  const out = tempDir(t)
  const started = Date.now()
  const run = await typedoc(['--out', out])
  t.log(`typedoc took ${Date.now() - started} ms`)
  // A failed run is an undocumented export, a broken {@link}, or a public type that is not exported.
  t.is(run.status, 0, run.output)
  t.true(fs.existsSync(path.join(COMMITTED, 'README.md')), 'docs/api/README.md is missing: run `npm run docs`')
  const made = tree(out)
  const committed = tree(COMMITTED)
  const missing = [...made.keys()].filter((file) => !committed.has(file))
  const stale = [...committed.keys()].filter((file) => !made.has(file))
  const changed = [...made.keys()].filter((file) => committed.has(file) && committed.get(file) !== made.get(file))
  t.deepEqual({ missing, stale, changed }, { missing: [], stale: [], changed: [] }, 'docs/api/ does not match the sources: run `npm run docs` and commit docs/api/')
})

test('an exported name without a doc comment fails the generation', async (t) => {
  // The same options (typedoc.json, extended), on an entry point that adds one undocumented export.
  const dir = tempDir(t)
  const entry = path.join(dir, 'entry.ts')
  fs.writeFileSync(entry, `export * from ${JSON.stringify(path.join(ROOT, 'js', 'index'))}\nexport function undocumentedHelper(): void {}\n`)
  const tsconfig = path.join(dir, 'tsconfig.json')
  const compilerOptions = { rootDir: '/', noEmit: true, typeRoots: [path.join(ROOT, 'node_modules', '@types')] }
  fs.writeFileSync(tsconfig, JSON.stringify({ extends: path.join(ROOT, 'tsconfig.build.json'), compilerOptions, files: [entry] }))
  const options = path.join(dir, 'typedoc.json')
  const name = 'reactor-socket' // what TypeDoc reads from package.json, which the temporary folder lacks
  fs.writeFileSync(options, JSON.stringify({ extends: [path.join(ROOT, 'typedoc.json')], name, entryPoints: [entry], tsconfig, out: path.join(dir, 'out') }))
  const run = await typedoc(['--options', options])
  t.not(run.status, 0, run.output)
  t.regex(run.output, /undocumentedHelper .*does not have any documentation/)
  t.false(fs.existsSync(path.join(dir, 'out', 'README.md')), 'nothing is written when a warning fails the run')
})

// Every code block in README.md is checked, so the README cannot drift from the package:
// - a block after `<!-- example: <file> -->` is an excerpt: its lines must appear, in order and
//   together, in that file (indentation aside), and a test must run that file;
// - a `ts` block without it is a whole program: all of them are type-checked together by tsc under
//   `strict` and `exactOptionalPropertyTypes` against the built package as a user imports it
//   ('reactor-socket', resolved through its `exports`), then each is run and must exit 0 by itself;
// - a `sh` block's `npm run <script>` must be a script of package.json, and every path it names must exist.
// Any other block fails: say where it comes from, or make it a program.
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { execFile } from 'node:child_process'
import { within } from '../helpers.js'

const ROOT = process.cwd()
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')

interface Block {
  lang: string
  code: string
  line: number
  example?: string
}

function blocks(markdown: string): Block[] {
  const out: Block[] = []
  const lines = markdown.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!)
    if (!open) continue
    let end = i + 1
    while (end < lines.length && lines[end] !== '```') end++
    if (end === lines.length) throw new Error(`README.md:${i + 1}: a code block that never closes`)
    let before = i - 1
    while (before >= 0 && lines[before]!.trim() === '') before--
    const marker = before >= 0 ? /^<!-- example: (\S+) -->$/.exec(lines[before]!.trim()) : null
    out.push({ lang: open[1]!, code: lines.slice(i + 1, end).join('\n'), line: i + 1, ...(marker ? { example: marker[1]! } : {}) })
    i = end
  }
  return out
}

const ALL = blocks(README)
const where = (b: Block) => `README.md:${b.line}`

/** The spec files, read once: which of them run an example file. */
const SPECS = (fs.readdirSync(path.join(ROOT, '__test__'), { recursive: true }) as string[])
  .filter((f) => f.endsWith('.spec.ts'))
  .map((f) => ({ file: f, text: fs.readFileSync(path.join(ROOT, '__test__', f), 'utf8') }))

/** A spec runs `example` when it names it: as one path ('examples/x.js') or by its segments ('examples', 'x.js'). */
function specsRunning(example: string): string[] {
  const segments = example.split('/')
  return SPECS.filter(({ text }) => text.includes(example) || segments.every((s) => text.includes(`'${s}'`))).map((s) => s.file)
}

/** Where `excerpt` sits in `file`'s lines, comparing each line without its indentation; -1 if nowhere. */
function findExcerpt(file: string, excerpt: string): number {
  const have = file.split('\n').map((l) => l.trim())
  const want = excerpt.split('\n').map((l) => l.trim())
  outer: for (let i = 0; i + want.length <= have.length; i++) {
    for (let j = 0; j < want.length; j++) if (have[i + j] !== want[j]) continue outer
    return i
  }
  return -1
}

test('the README has code blocks, and every one is of a kind this file checks', (t) => {
  t.true(ALL.length >= 8, `only ${ALL.length} blocks found`)
  for (const b of ALL) {
    const known = b.example !== undefined || b.lang === 'ts' || b.lang === 'sh'
    t.true(known, `${where(b)}: a \`${b.lang || 'plain'}\` block that is neither an excerpt (<!-- example: file -->), a ts program nor sh`)
  }
})

test('every excerpt is in its example file, and a test runs that file', (t) => {
  const excerpts = ALL.filter((b) => b.example !== undefined)
  t.true(excerpts.length >= 6, 'the recipes are excerpts of examples/')
  for (const b of excerpts) {
    const file = path.join(ROOT, b.example!)
    t.true(fs.existsSync(file), `${where(b)}: ${b.example} does not exist`)
    if (!fs.existsSync(file)) continue
    t.not(findExcerpt(fs.readFileSync(file, 'utf8'), b.code), -1, `${where(b)}: the block is not (or no longer) in ${b.example}`)
    t.not(specsRunning(b.example!).length, 0, `${where(b)}: no test under __test__/ runs ${b.example}`)
  }
})

test('every sh block names npm scripts that exist and paths that exist', (t) => {
  const scripts = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts
  for (const b of ALL.filter((x) => x.lang === 'sh')) {
    for (const m of b.code.matchAll(/npm (?:run ([\w:-]+)|(test))\b/g)) {
      const name = m[1] ?? m[2]!
      t.true(Object.hasOwn(scripts, name), `${where(b)}: npm script '${name}' is not in package.json`)
    }
    for (const m of b.code.matchAll(/(?:^|\s)((?:examples|scripts|bench|docs)\/[\w./-]+)/g)) {
      t.true(fs.existsSync(path.join(ROOT, m[1]!)), `${where(b)}: ${m[1]} does not exist`)
    }
  }
})

// The programs: one temp project under target/ (so `--import tsx` and typescript resolve from the
// repository), with node_modules/reactor-socket pointing at the repository as an installed package.
const programs = ALL.filter((b) => b.lang === 'ts' && b.example === undefined)
const WORK = path.join(ROOT, 'target', 'readme-check')

function run(file: string, args: string[], cwd: string, ms: number): Promise<{ code: number | null; out: string }> {
  return within(
    new Promise((resolve) => {
      execFile(file, args, { cwd, timeout: ms, killSignal: 'SIGKILL', maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null
        resolve({ code, out: `${stdout}${stderr}` })
      })
    }),
    `${path.basename(args[args.length - 1] ?? file)}`,
    ms + 5000,
  )
}

test.serial('every ts block type-checks under strict and exactOptionalPropertyTypes, as a user of the package compiles it', async (t) => {
  t.true(programs.length >= 1, 'the first screen is a program')
  fs.rmSync(WORK, { recursive: true, force: true })
  fs.mkdirSync(path.join(WORK, 'node_modules'), { recursive: true })
  fs.symlinkSync(ROOT, path.join(WORK, 'node_modules', 'reactor-socket'), 'dir')
  fs.writeFileSync(path.join(WORK, 'package.json'), JSON.stringify({ name: 'readme-check', private: true, type: 'module' }))
  const files = programs.map((b) => {
    const name = `readme-${b.line}.ts`
    fs.writeFileSync(path.join(WORK, name), `// ${where(b)}\n${b.code}\n`)
    return name
  })
  fs.writeFileSync(
    path.join(WORK, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'Node16', moduleResolution: 'Node16', strict: true,
        exactOptionalPropertyTypes: true, noEmit: true, skipLibCheck: false, types: ['node'],
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      },
      files,
    }),
  )
  const tsc = await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], WORK, 60000)
  t.is(tsc.code, 0, `tsc found errors in the README's programs:\n${tsc.out.replace(/readme-(\d+)\.ts\((\d+),(\d+)\)/g, (_m, fence: string, n: string, col: string) => `README.md:${Number(fence) + Number(n) - 1}:${col}`)}`)
})

test.serial('every ts block runs and exits 0 by itself', async (t) => {
  if (!fs.existsSync(path.join(WORK, 'tsconfig.json'))) return t.fail('the type-check step did not prepare the programs')
  for (const b of programs) {
    const result = await run(process.execPath, ['--import', 'tsx', `readme-${b.line}.ts`], WORK, 20000)
    t.is(result.code, 0, `${where(b)} exited with ${result.code}:\n${result.out}`)
  }
})

test("the README's import list names every export of the package, values and types", async (t) => {
  const block = programs.find((b) => /^import type \{/m.test(b.code) && /^import \{/m.test(b.code))
  if (!block) return t.fail('no block imports both the values and the types of the package')
  const names = (kind: 'import' | 'import type') =>
    new Set(
      [...block.code.matchAll(new RegExp(`^${kind} \\{([^}]*)\\} from 'reactor-socket'`, 'gm'))]
        .flatMap((m) => m[1]!.split(','))
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    )
  const values = names('import')
  const types = names('import type')
  // What the package exports: its values at run time, its names in the declarations (TypeScript API).
  const ts = (await import('typescript')).default
  const program = ts.createProgram([path.join(ROOT, 'dist', 'index.d.ts')], { skipLibCheck: true, types: [] })
  const checker = program.getTypeChecker()
  const module = checker.getSymbolAtLocation(program.getSourceFile(path.join(ROOT, 'dist', 'index.d.ts'))!)!
  const declared = checker.getExportsOfModule(module).map((s) => s.getName())
  const runtime = new Set(Object.keys(await import(path.join(ROOT, 'dist', 'index.js'))).filter((k) => k !== 'default' && k !== '__esModule'))
  for (const name of declared) {
    if (runtime.has(name)) t.true(values.has(name), `the README's import list lacks the value ${name}`)
    else t.true(types.has(name) || values.has(name), `the README's import list lacks the type ${name}`)
  }
  for (const name of [...values, ...types]) t.true(declared.includes(name), `the README imports ${name}, which the package does not export`)
})

// The recipes are excerpts of examples/: those are JavaScript, so they are type-checked as such
// (checkJs, without strict's demands on unannotated JS) against the package's declarations, the
// way an editor checks a user's JS: a call, property or option the types do not have fails here.
test.serial('every example type-checks (checkJs) against the package as users import it', async (t) => {
  const examples = (fs.readdirSync(path.join(ROOT, 'examples'), { recursive: true }) as string[])
    .filter((f) => /\.(m?js)$/.test(f))
    .map((f) => path.join(ROOT, 'examples', f))
  t.true(examples.length >= 10, `examples found: ${examples.length}`)
  const dir = path.join(ROOT, 'target', 'examples-check')
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        allowJs: true, checkJs: true, noEmit: true, target: 'ES2022', module: 'Node16', moduleResolution: 'Node16',
        skipLibCheck: true, types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      },
      files: examples,
    }),
  )
  const tsc = await run(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], dir, 60000)
  t.is(tsc.code, 0, `tsc found errors in examples/:\n${tsc.out}`)
})

// The shipped declarations (dist/*.d.ts, dist/index.d.mts, native/binding.d.ts) as a consumer with
// every strict option compiles them: the fixtures import 'reactor-socket', which resolves through
// package.json "exports" to dist/ (the package's own name, as a dependent's node_modules would give
// it), and their `@ts-expect-error` lines must each fail (tsc reports one that does not). Needs
// `npm run build:js` (npm test runs it before ava).
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import ts from 'typescript'
import { AddressFamily } from 'reactor-socket'

const ROOT = process.cwd()
const DIST = path.join(ROOT, 'dist')
const SOURCES = path.join(ROOT, 'js')
const FIXTURES = path.join(ROOT, '__test__', 'types', 'fixtures')

/** A consumer that turned on everything strict and checks its dependencies' declarations. */
const CONSUMER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.Node16,
  moduleResolution: ts.ModuleResolutionKind.Node16,
  strict: true,
  exactOptionalPropertyTypes: true,
  noUncheckedIndexedAccess: true,
  noImplicitOverride: true,
  skipLibCheck: false,
  types: ['node'],
  noEmit: true,
}

/** dist/<name>.d.ts for each module of js/ (files a past build left in dist/ are not the package's). */
function builtDeclarations(): string[] {
  const modules = fs.readdirSync(SOURCES).filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
  return modules.map((file) => {
    const source = path.join(SOURCES, file)
    const declaration = path.join(DIST, file.replace(/\.ts$/, '.d.ts'))
    if (!fs.existsSync(declaration)) throw new Error(`${path.relative(ROOT, declaration)} is missing: run npm run build:js`)
    if (fs.statSync(declaration).mtimeMs < fs.statSync(source).mtimeMs) {
      throw new Error(`${path.relative(ROOT, declaration)} is older than js/${file}: run npm run build:js`)
    }
    return declaration
  })
}

/** The package's shipped declarations and the fixtures. */
function isOurs(file: string): boolean {
  return [DIST, FIXTURES, path.join(ROOT, 'native')].some((dir) => file.startsWith(dir + path.sep))
}

test('the declarations compile for a strict consumer, and the fixtures type-check as they should', (t) => {
  const fixtures = fs.readdirSync(FIXTURES).map((file) => path.join(FIXTURES, file))
  const roots = [...fixtures, ...builtDeclarations(), path.join(DIST, 'index.d.mts')]
  const program = ts.createProgram(roots, CONSUMER_OPTIONS)
  const files = program.getSourceFiles().map((file) => path.resolve(file.fileName))
  // The package as a dependent resolves it: the built declarations, never the sources.
  t.true(files.includes(path.join(DIST, 'index.d.ts')), 'reactor-socket resolves to dist/index.d.ts')
  t.true(files.includes(path.join(ROOT, 'native', 'binding.d.ts')), 'the binding declarations are checked too')
  t.deepEqual(files.filter((file) => file.startsWith(SOURCES + path.sep)), [], 'no source file of js/ is compiled')
  t.true(fixtures.length >= 2, 'the fixtures are there')
  t.true(files.filter(isOurs).length > fixtures.length + 20, 'the package declarations are among the files checked')

  // Every file of the package and the fixtures is checked (skipLibCheck off); @types/node and the
  // default libraries are not ours to check, and skipping them keeps this test fast.
  const ours = program.getSourceFiles().filter((file) => isOurs(path.resolve(file.fileName)))
  const diagnostics = [
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
    ...ours.flatMap((file) => [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]),
  ]
  const report = ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (name) => name,
    getCurrentDirectory: () => ROOT,
    getNewLine: () => '\n',
  })
  t.is(diagnostics.length, 0, report)
})

test("AddressFamily's values are the ones its type names (Linux's numbers, from the binding)", (t) => {
  // Compiles only while the type names these numbers; the values come from the binding.
  const named: { readonly [K in keyof typeof AddressFamily]: (typeof AddressFamily)[K] } = { UNIX: 1, INET: 2, INET6: 10 }
  t.deepEqual({ ...AddressFamily }, named)
})

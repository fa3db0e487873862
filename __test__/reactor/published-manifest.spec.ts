// The manifest the main package is published with (scripts/pack.mjs): package.json less what only
// development uses. The tarball itself is packed, installed and checked by scripts/install-test.mjs.
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'

const ROOT = process.cwd()
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))

type Manifest = Record<string, unknown>
type PackModule = { publishedManifest(pkg: Manifest): Manifest }
let publishedManifest: PackModule['publishedManifest']

test.before(async () => {
  ;({ publishedManifest } = (await import(pathToFileURL(path.join(ROOT, 'scripts', 'pack.mjs')).href)) as PackModule)
})

test('the published manifest has no scripts, devDependencies or ava settings', (t) => {
  // package.json has them: `prepare` builds the addon for `npm ci` and `npm install` in a checkout.
  t.truthy(pkg.scripts.prepare)
  const published = publishedManifest(pkg)
  t.is(published.scripts, undefined)
  t.is(published.devDependencies, undefined)
  t.is(published.ava, undefined)
})

test("the published manifest keeps every field users' tools read, unchanged", (t) => {
  const published = publishedManifest(pkg)
  for (const field of ['name', 'version', 'description', 'main', 'types', 'exports', 'files', 'engines', 'napi', 'keywords', 'license', 'repository', 'homepage', 'bugs']) {
    t.deepEqual(published[field], pkg[field], field)
  }
  const withPlatforms = publishedManifest({ ...pkg, optionalDependencies: { 'reactor-socket-linux-x64-gnu': pkg.version } })
  t.deepEqual(withPlatforms.optionalDependencies, { 'reactor-socket-linux-x64-gnu': pkg.version })
})

test('a package.json field nobody classified stops the pack, naming it', (t) => {
  t.throws(() => publishedManifest({ ...pkg, prettier: { semi: false } }), { message: /prettier is in neither list/ })
})

// The package's manifest and loading, as users meet them (the installed package itself is checked by
// scripts/install-test.mjs, the last step of `npm test`).
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { createRequire } from 'node:module'
import { child, fixture, killChildren } from '../helpers.js'

test.after.always(() => killChildren())

const ROOT = process.cwd()
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
const requireHere = createRequire(path.join(ROOT, 'package.json'))
const { parseTriple } = requireHere('./dist/load-native.js') as typeof import('../../js/load-native')
const platformNames = (pkg.napi.targets as string[]).map((triple) => parseTriple(triple).platformArchAbi)

test('each exports condition has its own types, and the files exist', (t) => {
  const root = pkg.exports['.']
  t.deepEqual(root.import, { types: './dist/index.d.mts', default: './dist/index.mjs' })
  t.deepEqual(root.require, { types: './dist/index.d.ts', default: './dist/index.js' })
  for (const file of [root.import.types, root.import.default, root.require.types, root.require.default]) {
    t.true(fs.existsSync(path.join(ROOT, file)), file)
  }
})

test('the main package installs on any OS and ships no binary of its own', (t) => {
  t.is(pkg.os, undefined, 'an "os" field makes npm refuse the install on a macOS or Windows machine')
  t.is(pkg.cpu, undefined)
  t.false((pkg.files as string[]).some((entry) => entry.includes('.node') || entry === 'native' || entry.endsWith('/*')))
  t.deepEqual(
    (pkg.files as string[]).filter((entry) => entry.startsWith('native/')),
    ['native/binding.js', 'native/binding.d.ts'],
  )
})

test('users can find it: keywords, repository, homepage, bugs', (t) => {
  for (const word of ['socket activation', 'systemd', 'file descriptor', 'SCM_RIGHTS', 'proxy', 'reactor']) {
    t.true(pkg.keywords.includes(word), word)
  }
  t.regex(pkg.repository.url, /^git\+https:\/\/github\.com\//)
  t.regex(pkg.homepage, /^https:\/\//)
  t.regex(pkg.bugs.url, /^https:\/\/.*\/issues$/)
})

// Every native target napi-rs 3 can build (its AVAILABLE_TARGETS, less WebAssembly): the loader's
// parser must name each one's package as napi-rs itself does.
const NAPI_TARGETS = [
  'aarch64-apple-darwin', 'aarch64-linux-android', 'aarch64-unknown-linux-gnu', 'aarch64-unknown-linux-musl',
  'aarch64-unknown-linux-ohos', 'aarch64-pc-windows-msvc', 'aarch64-unknown-freebsd', 'x86_64-apple-darwin',
  'x86_64-pc-windows-msvc', 'x86_64-pc-windows-gnu', 'x86_64-unknown-linux-gnu', 'x86_64-unknown-linux-musl',
  'x86_64-unknown-linux-ohos', 'x86_64-unknown-freebsd', 'i686-pc-windows-msvc', 'armv7-unknown-linux-gnueabihf',
  'armv7-unknown-linux-musleabihf', 'armv7-linux-androideabi', 'universal-apple-darwin',
  'loongarch64-unknown-linux-gnu', 'riscv64gc-unknown-linux-gnu', 'powerpc64le-unknown-linux-gnu',
  'powerpc64le-unknown-freebsd', 's390x-unknown-linux-gnu',
]

test("the loader parses target triples as napi-rs's own parseTriple does", (t) => {
  const napi = requireHere('@napi-rs/cli') as {
    parseTriple(triple: string): { platformArchABI: string; platform: string; arch: string; abi: string | null }
  }
  for (const triple of [...NAPI_TARGETS, ...pkg.napi.targets]) {
    const theirs = napi.parseTriple(triple)
    const ours = parseTriple(triple)
    t.deepEqual(
      { name: ours.platformArchAbi, platform: ours.platform, arch: ours.arch, abi: ours.abi },
      { name: theirs.platformArchABI, platform: theirs.platform, arch: theirs.arch, abi: theirs.abi },
      triple,
    )
  }
})

test('the platform package names the loader derives are the ones in npm/ (made by napi create-npm-dirs)', (t) => {
  const made = fs
    .readdirSync(path.join(ROOT, 'npm'))
    .map((dir) => JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', dir, 'package.json'), 'utf8')).name)
    .sort()
  t.deepEqual(made, platformNames.map((name) => `${pkg.name}-${name}`).sort())
})

test('the platform packages keep os, cpu and libc, and match the main package', (t) => {
  for (const name of platformNames) {
    const platform = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', name, 'package.json'), 'utf8'))
    const target = parseTriple(pkg.napi.targets[platformNames.indexOf(name)])
    t.deepEqual(platform.os, [target.platform], name)
    t.deepEqual(platform.cpu, [target.arch], name)
    t.deepEqual(platform.libc, [target.abi === 'musl' ? 'musl' : 'glibc'], name)
    t.deepEqual(platform.engines, pkg.engines, name)
    t.is(platform.version, pkg.version, name)
  }
})

// In a child: ava's TypeScript loader would hand this file the CommonJS entry, not dist/index.mjs.
test('an ESM program: the default export is the CommonJS module, the named ones its properties', async (t) => {
  const c = child(fixture('esm-default.mjs'))
  const res = await c.wait()
  t.is(res.code, 0, res.stderr)
  const seen = JSON.parse(await c.line('RESULT '))
  t.true(seen.defaultIsCjs)
  t.true(seen.names > 20)
  t.deepEqual(seen.differ, [])
  t.deepEqual(seen.missing, [])
})

// The only machines this can run on are supported ones, so the child is told it runs elsewhere:
// a preload changes what process.platform / process.arch report before the package loads.
for (const [what, fake] of [
  ['macOS', 'darwin-arm64'],
  ['a 32-bit x86 Linux', 'linux-ia32'],
] as const) {
  test(`on ${what}, loading fails with ERR_REACTOR_SOCKET_UNSUPPORTED_PLATFORM naming every target`, async (t) => {
    const c = child(fixture('load-as-platform.cjs'), [], { env: { ...process.env, FAKE_PLATFORM: fake } })
    const res = await c.wait()
    t.is(res.code, 0, res.stderr)
    const seen = JSON.parse(await c.line('RESULT '))
    t.is(seen.code, 'ERR_REACTOR_SOCKET_UNSUPPORTED_PLATFORM')
    t.true(seen.message.includes(`(${fake}`), seen.message)
    for (const name of platformNames) t.true(seen.message.includes(name), `${name} in: ${seen.message}`)
    t.notRegex(seen.message, /Cannot find native binding/)
    t.false(seen.hasCause)
  })
}

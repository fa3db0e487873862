// Loads the native addon through the loader napi-rs generates at build time (native/binding.js), and
// turns its failure into one clear error. The main package carries no binary: npm installs the one
// for this machine as an optional dependency (reactor-socket-<platform>, a package per target in
// package.json "napi.targets"). When that package is missing — an unsupported OS or CPU, an install
// with optional dependencies omitted, a node_modules copied from another OS — the generated loader
// throws a chain of require failures; users get instead an error that says what is supported.
import { createRequire } from 'node:module'
import * as fs from 'node:fs'
import * as path from 'node:path'

/** Where package.json and native/ are: one level above js/ (sources) and dist/ (build). */
const packageRoot = path.join(__dirname, '..')
const bindingPath = path.join(packageRoot, 'native', 'binding.js')

/** The target a platform package is built for, in napi-rs's naming (`linux-x64-gnu`). */
export interface NativeTarget {
  /** The Rust target triple as written in package.json, e.g. `x86_64-unknown-linux-gnu`. */
  triple: string
  /** `process.platform` / `process.arch` values of the machines that can load it. */
  platform: string
  arch: string
  /** The C library on Linux (`gnu` = glibc, `musl`), the toolchain elsewhere (`msvc`), or null. */
  abi: string | null
  /** `<platform>-<arch>[-<abi>]`: the suffix of the platform package's name and of the `.node` file. */
  platformArchAbi: string
}

// Rust's names for CPUs where Node's differ, and the systems other than Linux (those napi-rs builds for).
const NODE_ARCH: Record<string, string> = {
  x86_64: 'x64',
  aarch64: 'arm64',
  i686: 'ia32',
  armv7: 'arm',
  riscv64gc: 'riscv64',
  powerpc64le: 'ppc64',
  loongarch64: 'loong64',
}
const NODE_PLATFORM: Record<string, string> = {
  darwin: 'darwin',
  windows: 'win32',
  freebsd: 'freebsd',
  android: 'android',
  openharmony: 'openharmony',
}

/** `x86_64-unknown-linux-gnu` → linux / x64 / gnu. Only the parts napi-rs uses to name packages. */
export function parseTriple(triple: string): NativeTarget {
  // Two systems napi-rs names otherwise than the triple: 32-bit Android (android-arm-eabi) and
  // OpenHarmony (`-linux-ohos`: openharmony-<arch>).
  const parts = triple.replace(/-androideabi$/, '-android-eabi').replace(/-linux-ohos$/, '-openharmony').split('-')
  const arch = NODE_ARCH[parts[0]] ?? parts[0]
  // `aarch64-linux-android` names linux too: the other systems win.
  const system = parts.find((part) => part in NODE_PLATFORM) ?? (parts.includes('linux') ? 'linux' : parts[2] ?? 'unknown')
  const platform = system === 'linux' ? 'linux' : NODE_PLATFORM[system] ?? system
  const last = parts[parts.length - 1]
  // Linux triples end in the C library (`gnu`, `gnueabihf`, `musl`); Windows ones in the toolchain.
  let abi: string | null = null
  if (platform === 'linux' || platform === 'win32' || platform === 'android') abi = last === system ? null : last
  const platformArchAbi = [platform, arch, abi].filter((part) => part !== null).join('-')
  return { triple, platform, arch, abi, platformArchAbi }
}

/** The C library this Node runs on: Node's own report names glibc's version only when linked to it. */
function hostLibc(): 'gnu' | 'musl' {
  // Without excludeNetwork the report resolves the names of open sockets' peers, which can take long.
  // (Node 20 has the setting; @types/node 20 does not declare it.)
  const reporter = process.report as NodeJS.ProcessReport & { excludeNetwork?: boolean | undefined }
  const excludeNetwork = reporter.excludeNetwork
  reporter.excludeNetwork = true
  try {
    const report = reporter.getReport() as { header?: { glibcVersionRuntime?: string } }
    return report.header?.glibcVersionRuntime ? 'gnu' : 'musl'
  } finally {
    reporter.excludeNetwork = excludeNetwork
  }
}

/** The target among `targets` that this process can load, or null. */
export function hostTarget(targets: NativeTarget[]): NativeTarget | null {
  const candidates = targets.filter((t) => t.platform === process.platform && t.arch === process.arch)
  if (process.platform !== 'linux' || candidates.length === 0) return candidates[0] ?? null
  const libc = hostLibc()
  return candidates.find((t) => t.abi?.startsWith(libc === 'gnu' ? 'gnu' : 'musl')) ?? null
}

interface PackageJson {
  name: string
  version: string
  napi?: { binaryName?: string; targets?: string[] }
}

type LoadErrorCode =
  | 'ERR_REACTOR_SOCKET_UNSUPPORTED_PLATFORM' // no target in package.json for this OS / CPU / C library
  | 'ERR_REACTOR_SOCKET_NATIVE_MISSING' // a supported platform, but its package is not installed
  | 'ERR_REACTOR_SOCKET_NATIVE_LOAD' // the binary is there and failed to load (the loader's errors are the cause)

/** A plain `Error` with a `code`, as Node's own errors have. */
export type NativeLoadError = Error & { code: LoadErrorCode }

function loadError(message: string, code: LoadErrorCode, cause?: unknown): NativeLoadError {
  const error = new Error(message, cause === undefined ? undefined : { cause }) as NativeLoadError
  error.code = code
  return error
}

/** Requires native/binding.js; on failure throws a `NativeLoadError` naming the supported platforms. */
export function loadNativeBinding<T>(): T {
  const requireHere = createRequire(__filename)
  try {
    return requireHere(bindingPath) as T
  } catch (loaderError) {
    throw explainLoadFailure(requireHere(path.join(packageRoot, 'package.json')) as PackageJson, loaderError)
  }
}

function explainLoadFailure(pkg: PackageJson, loaderError: unknown): NativeLoadError {
  const targets = (pkg.napi?.targets ?? []).map(parseTriple)
  const supported = targets.map((t) => `${t.platformArchAbi} (${t.triple})`).join(', ')
  const here = `${process.platform}-${process.arch}${process.platform === 'linux' ? `-${hostLibc()}` : ''}`
  const target = hostTarget(targets)
  if (target === null) {
    return loadError(
      `${pkg.name} has no native binary for this platform (${here}, Node ${process.version}). ` +
        `Supported platforms: ${supported}. It installs anywhere, so a project that runs it in a ` +
        'Linux container can be developed on another OS, but it loads only on those platforms.',
      'ERR_REACTOR_SOCKET_UNSUPPORTED_PLATFORM',
    )
  }
  const platformPackage = `${pkg.name}-${target.platformArchAbi}`
  const localBinary = path.join(packageRoot, 'native', `${pkg.napi?.binaryName ?? pkg.name}.${target.platformArchAbi}.node`)
  if (!fs.existsSync(localBinary) && !isResolvable(`${platformPackage}/package.json`)) {
    return loadError(
      `${pkg.name}: the package with the native binary for this platform, ${platformPackage}@${pkg.version}, ` +
        `is not installed. npm installs it as an optional dependency of ${pkg.name}: reinstall without ` +
        '--omit=optional (or --no-optional), and do not copy node_modules from a machine of another ' +
        `platform. Supported platforms: ${supported}.`,
      'ERR_REACTOR_SOCKET_NATIVE_MISSING',
    )
  }
  // The binary is there but did not load (a truncated file, a C library too old, ...): the
  // loader's own errors say why, so they travel as the cause.
  const reason = loaderError instanceof Error ? loaderMessages(loaderError) : String(loaderError)
  return loadError(
    `${pkg.name}: the native binary for ${target.platformArchAbi} failed to load: ${reason}. ` +
      `Supported platforms: ${supported}.`,
    'ERR_REACTOR_SOCKET_NATIVE_LOAD',
    loaderError,
  )
}

/** Whether `specifier` resolves from the generated loader's folder, as its own require would. */
function isResolvable(specifier: string): boolean {
  try {
    createRequire(bindingPath).resolve(specifier)
    return true
  } catch {
    return false
  }
}

/**
 * What the generated loader's attempts reported (it chains them through `cause`), less its generic
 * summary and the attempts that found no file.
 */
function loaderMessages(error: Error): string {
  const messages: string[] = []
  for (let e: unknown = error; e instanceof Error; e = e.cause) messages.push(e.message)
  const telling = messages.filter((m) => !/^(Cannot find native binding|Cannot find module)/.test(m))
  return (telling.length > 0 ? telling : messages).join('; ')
}

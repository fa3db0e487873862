// Certificates for the TLS tests, made at test time with `openssl` in a temp dir (nothing is
// committed), as crates/core/src/tls/tests/certs.rs makes the core's: a test CA, `localhost`
// (DNS:localhost, IP:127.0.0.1, IP:::1), `a.test`, `*.wild.test`, an expired `localhost`, a client
// certificate, and a second ("rogue") CA with a client of its own. Files stay on disk until
// `removeTlsMaterial` (openssl s_client/s_server and curl read them).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFile } from 'node:child_process'
import { hasCommand } from './tools.js'
import { within } from './waits.js'

export const HAVE_OPENSSL = hasCommand('openssl')
export const HAVE_CURL = hasCommand('curl')
export const NO_OPENSSL = 'openssl is not installed, no certificate can be made'

export interface CertFiles {
  cert: Buffer
  key: Buffer
  certPath: string
  keyPath: string
}

export interface TlsMaterial {
  dir: string
  ca: Buffer
  caPath: string
  localhost: CertFiles
  /** `localhost` again, another key (a reload target). */
  localhost2: CertFiles
  aTest: CertFiles
  wild: CertFiles
  expired: CertFiles
  client: CertFiles
  /** Signed by another CA. */
  rogueClient: CertFiles
  rogueCaPath: string
}

function openssl(dir: string, args: string[]): Promise<void> {
  return within(
    new Promise<void>((resolve, reject) =>
      execFile('openssl', args, { cwd: dir }, (err, _out, stderr) => (err ? reject(new Error(`openssl ${args.join(' ')}: ${stderr || err}`)) : resolve())),
    ),
    `openssl ${args[0]}`,
    30000,
  )
}

const SERVER_EXT = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n'
const CLIENT_EXT = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'

async function key(dir: string, name: string): Promise<void> {
  await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`])
}

async function ca(dir: string, name: string, cn: string): Promise<void> {
  await key(dir, name)
  await openssl(dir, [
    'req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-days', '3',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', `${name}.pem`,
  ])
}

let serial = 100

async function leaf(dir: string, name: string, cn: string, ext: string, issuer = 'ca'): Promise<void> {
  await key(dir, name)
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext)
  await openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`])
  await openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-set_serial', String(++serial),
    '-days', '3', '-extfile', `${name}.ext`, '-out', `${name}.pem`,
  ])
}

/** `openssl x509` cannot date a certificate in the past; `openssl ca` can. */
async function expired(dir: string): Promise<void> {
  await key(dir, 'expired')
  fs.writeFileSync(path.join(dir, 'index.txt'), '')
  fs.writeFileSync(path.join(dir, 'serial'), '7F01\n')
  fs.writeFileSync(
    path.join(dir, 'ca.cnf'),
    `[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = p\ncopy_extensions = none\n[p]\ncommonName = supplied\n[x]\n${SERVER_EXT}subjectAltName=DNS:localhost,IP:127.0.0.1\n`,
  )
  await openssl(dir, ['req', '-new', '-key', 'expired.key', '-subj', '/CN=localhost', '-out', 'expired.csr'])
  await openssl(dir, [
    'ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', 'expired.csr',
    '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-extensions', 'x', '-notext', '-out', 'expired.pem',
  ])
}

function files(dir: string, name: string): CertFiles {
  const certPath = path.join(dir, `${name}.pem`)
  const keyPath = path.join(dir, `${name}.key`)
  return { certPath, keyPath, cert: fs.readFileSync(certPath), key: fs.readFileSync(keyPath) }
}

/** Makes the material (a few seconds of openssl). */
export async function makeTlsMaterial(): Promise<TlsMaterial> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rs-tls-'))
  await ca(dir, 'ca', 'reactor-socket test CA')
  await ca(dir, 'rogue', 'rogue test CA')
  const san = 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n'
  await leaf(dir, 'localhost', 'localhost', SERVER_EXT + san)
  await leaf(dir, 'localhost2', 'localhost', SERVER_EXT + san)
  await leaf(dir, 'a', 'a.test', `${SERVER_EXT}subjectAltName=DNS:a.test\n`)
  await leaf(dir, 'wild', '*.wild.test', `${SERVER_EXT}subjectAltName=DNS:*.wild.test\n`)
  await leaf(dir, 'client', 'test client', CLIENT_EXT)
  await leaf(dir, 'rogue_client', 'rogue client', CLIENT_EXT, 'rogue')
  await expired(dir)
  return {
    dir,
    ca: fs.readFileSync(path.join(dir, 'ca.pem')),
    caPath: path.join(dir, 'ca.pem'),
    localhost: files(dir, 'localhost'),
    localhost2: files(dir, 'localhost2'),
    aTest: files(dir, 'a'),
    wild: files(dir, 'wild'),
    expired: files(dir, 'expired'),
    client: files(dir, 'client'),
    rogueClient: files(dir, 'rogue_client'),
    rogueCaPath: path.join(dir, 'rogue.pem'),
  }
}

export function removeTlsMaterial(m: TlsMaterial | undefined): void {
  if (m !== undefined) fs.rmSync(m.dir, { recursive: true, force: true })
}

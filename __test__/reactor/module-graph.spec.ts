// The modules of js/ form layers: no module imports, even for types only, a module that imports it
// back. Each import is found by TypeScript's own pre-processor (import and export declarations,
// `import type`, `import('./x')` in types, require calls).
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import ts from 'typescript'

const dir = path.join(process.cwd(), 'js')

/** Module name → the js/ modules it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))) {
    const info = ts.preProcessFile(fs.readFileSync(path.join(dir, file), 'utf8'), true, true)
    const local = info.importedFiles
      .map((f) => f.fileName)
      .filter((name) => name.startsWith('./'))
      .map((name) => path.basename(name).replace(/\.js$/, ''))
    graph.set(file.replace(/\.ts$/, ''), [...new Set(local)])
  }
  return graph
}

/** Every import cycle, each as the path that closes it (a → b → a). */
function cycles(graph: Map<string, string[]>): string[] {
  const found: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (name: string) => {
    state.set(name, 'open')
    stack.push(name)
    for (const next of graph.get(name) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next].join(' → '))
      else if (!state.has(next)) visit(next)
    }
    stack.pop()
    state.set(name, 'done')
  }
  for (const name of graph.keys()) if (!state.has(name)) visit(name)
  return found
}

test('js/ has no import cycles, type-only imports included', (t) => {
  const graph = importGraph()
  t.true(graph.size > 10, 'the modules were found')
  for (const [name, deps] of graph) for (const dep of deps) t.true(graph.has(dep), `${name} imports ./${dep}, a module of js/`)
  t.deepEqual(cycles(graph), [])
})

test('the registry is the core\'s own: no other module reaches into it, and the core imports none of the parts it routes to', (t) => {
  const graph = importGraph()
  t.deepEqual(
    (graph.get('core') ?? []).filter((dep) => ['transport', 'port', 'datagram', 'connect', 'relay', 'establish'].includes(dep)),
    [],
    'core.ts knows ports, transports, connects and relays only by the interfaces of host.ts',
  )
  const importersOfCore = [...graph].filter(([, deps]) => deps.includes('core')).map(([name]) => name)
  t.deepEqual(importersOfCore, ['reactor'], 'only the reactor makes and closes the core')
})

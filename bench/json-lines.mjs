// A measuring server's JSON lines (bench/servers/*-server.js print one per request on stdin):
// `ready()` waits for the first, `ask(command)` writes a request and waits for the answer. Every
// wait has a deadline, so a server that died or hangs fails the phase instead of hanging the bench.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Calls `line` with each whole line `child` prints (without its newline). */
export function onLines(child, line) {
  let partial = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (d) => {
    partial += d
    let at
    while ((at = partial.indexOf('\n')) >= 0) {
      line(partial.slice(0, at))
      partial = partial.slice(at + 1)
    }
  })
}

export function jsonLines(child, what, ms = 120_000) {
  const lines = []
  onLines(child, (line) => lines.push(JSON.parse(line)))
  const until = async (count, waiting) => {
    const deadline = Date.now() + ms
    while (lines.length < count) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited while ${waiting}`)
      if (Date.now() > deadline) throw new Error(`${what}: no answer within ${ms} ms while ${waiting}`)
      await sleep(10)
    }
    return lines[lines.length - 1]
  }
  return {
    ready: () => until(1, 'starting'),
    ask: (command) => {
      const count = lines.length + 1
      child.stdin.write(`${command}\n`)
      return until(count, `answering ${JSON.stringify(command)}`)
    },
  }
}

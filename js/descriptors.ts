// Received descriptors (SCM_RIGHTS) that no protocol takes are closed, so that nothing leaks.
import { binding } from './native'

export function closeDescriptors(fds: number[]): void {
  for (const fd of fds) {
    try {
      binding.sockets.close(fd)
    } catch {
      // already closed: nothing to release
    }
  }
}

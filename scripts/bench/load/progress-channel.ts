/** `reportProgress`: a progress line from the load process to the bench (over IPC; printed by the bench). */
import type { ChildMessage } from '../load-protocol.ts';

export function reportProgress(text: string): void {
  const message: ChildMessage = { kind: 'progress', text };
  if (process.connected) process.send?.(message);
}

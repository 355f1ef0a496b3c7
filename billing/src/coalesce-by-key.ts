/**
 * Coalesces calls of an idempotent refresh per key: a call made while a run for its key is in flight waits for one
 * more run that starts after that one, and every call made meanwhile shares it. Each caller is therefore answered by
 * a run that started after it asked — what a refresh after a commit needs — while a burst of N calls for one key
 * costs two runs instead of N.
 */
export function coalesceByKey<K>(run: (key: K) => Promise<void>): (key: K) => Promise<void> {
  const running = new Map<K, Promise<void>>();
  const waiting = new Map<K, Promise<void>>();
  return (key) => {
    const shared = waiting.get(key);
    if (shared) return shared;
    const previous = running.get(key) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(() => {
        waiting.delete(key);
        const current = run(key);
        running.set(key, current);
        const forget = () => {
          if (running.get(key) === current) running.delete(key);
        };
        current.then(forget, forget);
        return current;
      });
    waiting.set(key, next);
    return next;
  };
}

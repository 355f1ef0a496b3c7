/**
 * `cachedReading(read, maxAgeMs)`: a reading (a count from Postgres, the queue's job counts) that a metrics scrape
 * may reuse while it is younger than `maxAgeMs`, so scraping often — or many scrapers at once — costs one query per
 * `maxAgeMs` at most. Scrapes that come while a read is under way share it; a failed read is not kept (the next
 * scrape reads again). `maxAgeMs` 0 reads every time.
 */
export function cachedReading<T>(read: () => Promise<T>, maxAgeMs: number, now: () => number = Date.now): () => Promise<T> {
  let last: { value: T; at: number } | undefined;
  let reading: Promise<T> | undefined;
  return () => {
    if (last && now() - last.at < maxAgeMs) return Promise.resolve(last.value);
    reading ??= read()
      .then((value) => {
        last = { value, at: now() };
        return value;
      })
      .finally(() => (reading = undefined));
    return reading;
  };
}

// Formatting for display only: times, durations, empty values, signs of amounts, date ranges, idempotency keys. Money stays the decimal string the API sent.

const DAY_MS = 86_400_000;

/** "2025-03-01 10:00:00" (UTC) from an ISO time; the input itself when it does not parse. */
export function formatTime(iso) {
  if (iso === null || iso === undefined || iso === '') return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toISOString().replace('T', ' ').slice(0, 19);
}

/** "12m 30s" from milliseconds (a number or a bigint string). */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || ms === '') return '—';
  const total = Math.round(Number(ms) / 1000);
  if (!Number.isFinite(total)) return String(ms);
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  if (hours > 0) return `${hours}h ${minutes}m ${seconds}s`;
  if (minutes > 0) return `${minutes}m ${seconds}s`;
  return `${seconds}s`;
}

export const show = (value) => (value === null || value === undefined || value === '' ? '—' : String(value));

/** A sign class for a money string, read from its text (no parsing). */
export function signClass(amount) {
  const text = String(amount ?? '');
  if (text.startsWith('-')) return 'negative';
  if (/^\+?0*(\.0*)?$/.test(text)) return '';
  return 'positive';
}

export const isZeroMoney = (text) => /^[+-]?0*(\.0*)?$/.test(String(text ?? ''));

/** "userDebits" → "User debits". */
export function humanize(key) {
  const words = String(key).replace(/_/g, ' ').replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The date after a 'YYYY-MM-DD' date. */
function nextDay(date) {
  return new Date(Date.parse(`${date}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
}

/**
 * The form's dates (both days included, UTC) as the API's range: `from` at midnight, `to` exclusive, so the
 * day after the last day shown.
 */
export function apiRange(from, to) {
  return { from: from || undefined, to: to ? nextDay(to) : undefined };
}

export const todayUtc = () => new Date().toISOString().slice(0, 10);
export const daysAgoUtc = (days) => new Date(Date.now() - days * DAY_MS).toISOString().slice(0, 10);

/** A UUID v4: crypto.randomUUID where available (secure contexts), else from getRandomValues. */
export function newIdempotencyKey() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

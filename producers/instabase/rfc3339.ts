// RFC 3339 date-times (OpenAPI `format: date-time`), read exactly as section 5.6 of the RFC defines them.
// JavaScript's Date.parse and zod's iso.datetime are both stricter than the RFC (a lowercase "t" or "z",
// a leap second) and laxer elsewhere, so the grammar is written out here once.

// full-date "T" full-time; "T" and "Z" may be lowercase (RFC 3339 5.6, note on case).
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

const daysInMonth = (year: number, month: number): number =>
  month === 2
    ? year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)
      ? 29
      : 28
    : [4, 6, 9, 11].includes(month)
      ? 30
      : 31;

/**
 * Epoch milliseconds of an RFC 3339 date-time, or null when the text is not one. A leap second
 * (23:59:60 UTC) maps to the first millisecond of the next day, as POSIX time does; fractions beyond
 * milliseconds are cut off. Years 0000-9999 are all valid, so the result may lie far before 1970.
 */
export function parseRfc3339(text: string): number | null {
  const m = DATE_TIME.exec(text);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const offsetSign = m[9] === '-' ? -1 : 1;
  const offsetH = m[10] === undefined ? 0 : Number(m[10]);
  const offsetM = m[11] === undefined ? 0 : Number(m[11]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 60 || offsetH > 23 || offsetM > 59) return null;
  const offsetMin = offsetSign * (offsetH * 60 + offsetM);
  if (second === 60) {
    // Leap seconds are inserted at the end of a UTC day only.
    const utcMinuteOfDay = (((hour * 60 + minute - offsetMin) % 1440) + 1440) % 1440;
    if (utcMinuteOfDay !== 23 * 60 + 59) return null;
  }
  const fractionMs = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  // setUTCFullYear, because Date.UTC reads years 0-99 as 1900-1999. Seconds are added afterwards so that
  // a leap second's roll-over into the next day is not undone by it.
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute));
  date.setUTCFullYear(year, month - 1, day);
  return date.getTime() + second * 1000 + fractionMs - offsetMin * 60_000;
}

export const isRfc3339 = (text: string): boolean => parseRfc3339(text) !== null;

// IMF-fixdate and the two obsolete forms HTTP recipients must still accept (RFC 9110 5.6.7).
const HTTP_DATE = [
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/,
  /^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \d{2}-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{2} \d{2}:\d{2}:\d{2} GMT$/,
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/,
];

/**
 * A Last-Modified header as epoch ms: the spec declares `format: date-time` (with a note that HTTP-date
 * may be what is sent), so both are read. Null when it is neither.
 */
export function parseHeaderDate(text: string): number | null {
  const t = text.trim();
  const rfc3339 = parseRfc3339(t);
  if (rfc3339 !== null) return rfc3339;
  if (!HTTP_DATE.some((re) => re.test(t))) return null;
  // asctime has no zone and means GMT; Date.parse would read it as local time.
  const ms = Date.parse(/GMT$/.test(t) ? t : `${t} GMT`);
  return Number.isNaN(ms) ? null : ms;
}

/** When a certificate is valid. Give `validityDays` or `notAfter`, not both. */
export interface ValidityOptions {
  /** Length of the validity period, counted from `notBefore`. */
  validityDays?: number;
  /** Start of the validity period. Defaults to one minute ago. */
  notBefore?: Date;
  /** End of the validity period; overrides `validityDays`. */
  notAfter?: Date;
}

/** A resolved validity period, both ends on whole seconds. */
export interface ValidityWindow {
  notBefore: Date;
  notAfter: Date;
}

const DAY_MS = 24 * 60 * 60 * 1000;

// A certificate issued this instant is otherwise "not yet valid" to a peer
// whose clock runs a little behind ours.
const CLOCK_SKEW_MS = 60 * 1000;

/** Resolves validity options, using `defaultDays` when neither a length nor an end is given. */
export function resolveValidity(options: ValidityOptions, defaultDays: number): ValidityWindow {
  const { validityDays, notBefore, notAfter } = options;
  if (validityDays !== undefined && notAfter !== undefined) {
    throw new TypeError('give validityDays or notAfter, not both');
  }
  if (validityDays !== undefined && !(Number.isFinite(validityDays) && validityDays > 0)) {
    throw new RangeError(`validityDays must be a positive number, got ${validityDays}`);
  }
  const start = wholeSeconds(notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS));
  const end = wholeSeconds(
    notAfter ?? new Date(start.getTime() + (validityDays ?? defaultDays) * DAY_MS),
  );
  if (end.getTime() <= start.getTime()) {
    throw new RangeError(
      `notAfter (${end.toISOString()}) must be later than notBefore (${start.toISOString()})`,
    );
  }
  return { notBefore: start, notAfter: end };
}

// X.509 times carry whole seconds; rounding here makes the dates we report
// equal the ones a parser reads back out of the certificate.
function wholeSeconds(date: Date): Date {
  if (Number.isNaN(date.getTime())) throw new RangeError('invalid date');
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

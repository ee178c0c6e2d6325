// Field schemas shared by the config's own keys (./config.ts) and the knobs a resource declares with its
// row (./resources.ts), so that both validate a number the same way.
import { z } from 'zod';

export const positiveInt = z.number().int().positive();

/** A count or a duration that may be zero (a lookback, a settle delay). */
export const nonNegativeInt = z.number().int().min(0);

import { createHash } from 'node:crypto';
import type { CallOutcome } from '../../src/index.js';

/**
 * An outcome in a form that compares across clients: each client hands back
 * `filler` as a different byte container (Buffer, Uint8Array), and diffing
 * tens of kilobytes element by element is slow, so filler becomes its length
 * and digest.
 */
export function comparable(outcome: CallOutcome) {
  return {
    status: outcome.status,
    responses: outcome.responses.map(({ filler, ...fields }) => ({
      ...fields,
      filler: `${filler.length} bytes, sha256 ${createHash('sha256').update(filler).digest('hex')}`,
    })),
  };
}

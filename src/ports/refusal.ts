/**
 * A story's refusal, as a value: the OperationOutcome the HTTP edge answers with, its status
 * derived from it (docs/architecture.md, "Decisions": one way to refuse).
 */
import type { OperationOutcome } from 'fhir/r4.js';
import type { ResourceWriter, StoreTransactions } from './resource-store.js';

export interface Refusal {
  kind: 'refused';
  outcome: OperationOutcome;
}

export const refusal = (outcome: OperationOutcome): Refusal => ({ kind: 'refused', outcome });

function isRefusal(value: unknown): value is Refusal {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'refused';
}

/**
 * Runs `work` in one transaction. When it answers a refusal, everything it wrote is rolled back
 * (nothing partial is stored) and the refusal is the answer: stories refuse with values even
 * halfway through a transaction. The store rolls back on a throw, so the throw stays in here.
 */
export async function transactionUnlessRefused<T>(
  store: StoreTransactions,
  work: (tx: ResourceWriter) => Promise<T | Refusal>,
): Promise<T | Refusal> {
  const rollBack = new Error('refused: rolling the transaction back');
  let refused: Refusal | undefined;
  try {
    return await store.transaction(async (tx) => {
      const result = await work(tx);
      if (!isRefusal(result)) return result;
      refused = result;
      throw rollBack;
    });
  } catch (err) {
    if (err === rollBack && refused !== undefined) return refused;
    throw err;
  }
}

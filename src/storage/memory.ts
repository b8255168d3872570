import { recordToStore } from './record-shape.js';
import type { KeyRecord, StorageAdapter } from './types.js';

/**
 * The default store: records live in this process only. Two pools given the *same* instance share
 * state like two processes sharing a database, including {@link StorageAdapter.watch} pushes.
 */
export function memoryStorage(): StorageAdapter {
  const records = new Map<string, KeyRecord>();
  const listeners = new Set<(records: readonly KeyRecord[]) => void>();
  return {
    name: 'memory',
    async load(keyIds) {
      const found = new Map<string, KeyRecord>();
      for (const keyId of keyIds) {
        const record = records.get(keyId);
        if (record) found.set(keyId, { ...record });
      }
      return found;
    },
    async save(batch) {
      // As strict as a file store: what this store holds could be written to one.
      const copies = Array.from(batch, (record) => recordToStore(record, 'memory'));
      for (const record of copies) records.set(record.keyId, record);
      for (const listener of listeners) listener(copies);
    },
    watch(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    async close() {
      listeners.clear();
    },
  };
}

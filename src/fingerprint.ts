import { createHash } from 'node:crypto';

/** A stable, non-secret identity of a key: `k_` + the first 16 hex digits (64 bits) of its SHA-256. */
export type KeyId = string & { readonly __brand: 'KeyId' };

/** The fingerprint of a raw key; the same in every process. */
export function fingerprint(secret: string): KeyId {
  return `k_${createHash('sha256').update(secret, 'utf8').digest('hex').slice(0, 16)}` as KeyId;
}

/** What a person may see of a key: the last 4 characters for keys of 16+ characters, nothing otherwise. */
export function maskKey(secret: string): string {
  return secret.length >= 16 ? `****${secret.slice(-4)}` : '****';
}

/** True when `value` has the shape of a fingerprint (used to tell ids from raw keys in the string API). */
export function isKeyId(value: string): value is KeyId {
  return /^k_[0-9a-f]{16}$/.test(value);
}

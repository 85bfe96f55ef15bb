import { BackendRefused } from './errors.js';

/**
 * One field of a secret held as a JSON object (a Vault KV entry, a JSON secret in a cloud manager), as a string.
 * Errors name the fields that are there, never a value.
 */
export function pickField(backend: string, data: Readonly<Record<string, unknown>>, field: string, where: string): string {
  if (!Object.hasOwn(data, field)) throw new BackendRefused(backend, `${where} has no field '${field}' (fields: ${Object.keys(data).sort().join(', ') || 'none'}); set field: in the config`);
  const value = data[field];
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new BackendRefused(backend, `${where}: field '${field}' is ${value === '' ? 'empty' : 'not a string'}`);
}

/** A secret string that must be a JSON object because a field was asked of it. */
export function pickJsonField(backend: string, text: string, field: string, where: string): string {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new BackendRefused(backend, `${where} is not JSON, so field '${field}' cannot be read from it`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new BackendRefused(backend, `${where} is JSON but not an object, so field '${field}' cannot be read from it`);
  return pickField(backend, data as Record<string, unknown>, field, where);
}

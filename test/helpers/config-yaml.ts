import { stringify } from 'yaml';

type Fields = Readonly<Record<string, unknown>>;

/** One entry of `secrets:`: its placeholder, injectors and bindings, and any further key the schema takes. */
export interface SecretSpec extends Fields {
  readonly placeholder: string;
  readonly inject?: Fields | readonly Fields[];
  readonly bindings?: readonly Fields[];
}

/** `Authorization: Bearer <value>`, the injector most tests need. */
export const bearer = (name: string): Fields => ({ header: 'Authorization', format: `Bearer {${name}}` });

/**
 * The body of a `secrets:` section, as the harness's `secrets` option takes it. Built from objects so a test states
 * what it binds, not how YAML indents it.
 */
export function secretsYaml(secrets: Readonly<Record<string, SecretSpec>>): string {
  const lines = stringify(secrets, { lineWidth: 0 }).trimEnd().split('\n');
  return `\n${lines.map((l) => `  ${l}`).join('\n')}\n`;
}

/** A whole config file from its sections. */
export const configYaml = (sections: Fields): string => stringify(sections, { lineWidth: 0 });

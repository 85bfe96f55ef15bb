/** What a client needs before it can run: a command, an npm package in test/clients/node, a module or extension. */
export type Need =
  | { readonly cmd: string }
  | { readonly npm: string }
  | { readonly python: string; readonly why?: string }
  | { readonly perl: string }
  | { readonly php: string };

export interface ClientSpec {
  readonly name: string;
  /** The stand-in it talks to. */
  readonly api: 'openai' | 'anthropic' | 'git';
  readonly stream?: boolean;
  /** Relative to test/clients; `node` is this Node, `go-client` the Go binary the runner builds. */
  readonly cmd: readonly string[];
  readonly needs: readonly Need[];
}

export declare const CLIENTS: readonly ClientSpec[];

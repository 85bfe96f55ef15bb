/**
 * A request needs what replicas share (a global rate limit, a quota, a minted credential) and the shared store
 * cannot answer: refused with 503 shared_state_unavailable, nothing sent (under `on_unavailable: local`, limits are
 * answered by this replica's share instead). Carries no key, value or word of the store's reply to the agent.
 */
export class SharedStateUnavailable extends Error {
  override readonly name = 'SharedStateUnavailable';
}

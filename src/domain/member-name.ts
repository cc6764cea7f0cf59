/**
 * How a member is named in every line people read (logs, reasons, CLI
 * output, metrics labels): defined once. A member that has not started has
 * no name and may have no client URL, so the name falls back to its endpoint,
 * then to its hex ID.
 */

/** What naming a member needs; any of its records (snapshot, decision, result, status) has these. */
export interface Nameable {
  name?: string | null | undefined;
  endpoint?: string | null | undefined;
  memberId?: string | null | undefined;
}

/**
 * Its name, else its endpoint, else its hex ID.
 *
 * @example memberName({ name: '', endpoint: 'http://10.0.0.3:2379', memberId: '8e9e05c52164694d' }) // 'http://10.0.0.3:2379'
 */
export function memberName(m: Nameable): string {
  return m.name || m.endpoint || m.memberId || '?';
}

/**
 * Its name (else its hex ID) with its endpoint, the way reasons name a member: "m1 (http://127.0.0.1:2379)".
 *
 * @example memberLabel({ name: 'm1', endpoint: 'http://127.0.0.1:2379', memberId: '8e9e05c52164694d' }) // 'm1 (http://127.0.0.1:2379)'
 */
export function memberLabel(m: Nameable): string {
  const who = m.name || m.memberId || '?';
  return m.endpoint ? `${who} (${m.endpoint})` : who;
}

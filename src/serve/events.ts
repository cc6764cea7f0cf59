/** The daemon's event bus: every StepEvent of every cluster's run, to every subscriber (the SSE stream). */
import { messageOf } from '../domain/errors.js';
import type { DaemonEvent } from './types.js';

export class EventBus {
  private readonly listeners = new Set<(e: DaemonEvent) => void>();

  constructor(private readonly onListenerError: (message: string) => void) {}

  subscribe(listener: (e: DaemonEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** To every listener; one that throws is logged and the others still get the event. */
  emit(e: DaemonEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.onListenerError(messageOf(err));
      }
    }
  }
}

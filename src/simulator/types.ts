import type { BindRequest } from '../smpp/server.js';

export interface UdhInfo {
  reference: number;
  total: number;
  seq: number;
}

/** One submit_sm as the simulator saw it. */
export interface SubmitRecord {
  /** performance.now() when it arrived (monotonic ms, comparable within the process). */
  at: number;
  systemId: string;
  sessionId: number;
  sequence: number;
  /** The id we assigned, or null if refused (or the connection was dropped on it). */
  messageId: string | null;
  /** submit_sm_resp status; null when it was never answered (drop_after_submits). */
  status: number | null;
  source: string;
  destination: string;
  dataCoding: number;
  esmClass: number;
  registeredDelivery: number;
  /** Decoded text without the UDH. */
  text: string;
  udh: UdhInfo | null;
}

export interface MoInput {
  from: string;
  to: string;
  text: string;
  /** Receivers of this system_id; default the first bound receiver's. */
  systemId?: string;
  /** Send on this receiver/transceiver session (index in bind order among those of the system_id). */
  sessionIndex?: number;
}

export interface BoundSessionInfo {
  id: number;
  systemId: string;
  mode: BindRequest['mode'];
}
